package bus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/drwatch/drwatch/pkg/events"
)

// A site's NATS server admits only drwatch's own identities, each an nkey
// user whose permissions are the subjects its work needs. Every service
// publishes only under its own subject token
// (drwatch.<site>.evt.<service>.>), so a subject names its publisher; only
// the site identity creates and updates the site's streams; nobody may
// delete or purge a stream. The peer site's leafnode authenticates with the
// pair's leafnode key and may read our log, our ROLES and our file bucket,
// never write into them.

// Identities are the NATS users of a site: IdentitySite owns the streams
// (the site process's keeper and HTTP API), IdentityCLI is the operator's
// command line, the rest are the services by name.
var Identities = []string{IdentitySite, "heartbeat", "arbiter", "dbmonitor", "filesync", "notifier", "orchestrator", IdentityCLI}

const (
	// IdentitySite creates the site's streams and keeps the peer source.
	IdentitySite = "site"
	// IdentityCLI is the operator's command line.
	IdentityCLI = "cli"
	// LeafKeyFile is the pair's leafnode seed in a keys directory.
	LeafKeyFile = "leaf.nk"
)

// Buckets whose streams a service creates besides the log (KV and object
// stores are streams named KV_<bucket> and OBJ_<bucket>).
const (
	notifierBucket = "KV_drwatch_notifier"
	filesBucket    = "OBJ_drwatch_files"
)

// ErrNoKey is returned when an identity's seed file is missing.
var ErrNoKey = errors.New("no NATS key")

// KeyFile is the seed file of identity in dir.
func KeyFile(dir, identity string) string { return filepath.Join(dir, identity+".nk") }

// EnsureKeys makes sure dir holds a seed for every identity (and the
// leafnode seed when leafFile is set), creating the missing ones with mode
// 0600, and returns the public keys by identity. A seed file that does not
// parse is an error, never replaced: a site would lock out the clients that
// hold it.
func EnsureKeys(dir string, identities []string) (map[string]string, error) {
	if dir == "" {
		return nil, errors.New("nats keys: directory is required (an unauthenticated server is never started)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats keys: %w", err)
	}
	pubs := make(map[string]string, len(identities))
	for _, id := range identities {
		pub, err := ensureSeed(KeyFile(dir, id))
		if err != nil {
			return nil, err
		}
		pubs[id] = pub
	}
	return pubs, nil
}

// EnsureSeed returns the public key of the user seed in path, creating the
// file (0600) with a new seed when it does not exist.
func ensureSeed(path string) (string, error) {
	kp, err := readSeed(path)
	if errors.Is(err, ErrNoKey) {
		kp, err = nkeys.CreateUser()
		if err != nil {
			return "", fmt.Errorf("nats key %s: %w", path, err)
		}
		seed, _ := kp.Seed()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("nats key %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return "", fmt.Errorf("nats key %s: %w", path, err)
		}
		_, werr := f.Write(append(seed, '\n'))
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return "", fmt.Errorf("nats key %s: %w", path, werr)
		}
	} else if err != nil {
		return "", err
	}
	return kp.PublicKey()
}

// WriteSeed writes a new user seed to path (0600), replacing none: init
// and tests make the pair's leafnode key with it.
func WriteSeed(path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("nats key %s exists", path)
	}
	_, err := ensureSeed(path)
	return err
}

func readSeed(path string) (nkeys.KeyPair, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("nats key: %w", err)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(data))))
	if err != nil {
		return nil, fmt.Errorf("nats key %s: not an nkey seed: %w", path, err)
	}
	if p, _ := kp.PublicKey(); !nkeys.IsValidPublicUserKey(p) {
		return nil, fmt.Errorf("nats key %s: not a user seed (want one starting with SU)", path)
	}
	return kp, nil
}

// ClientAuth is the connect option that authenticates as identity with its
// seed in dir.
func ClientAuth(dir, identity string) (nats.Option, error) {
	kp, err := readSeed(KeyFile(dir, identity))
	if err != nil {
		return nil, fmt.Errorf("credentials of %s: %w", identity, err)
	}
	pub, _ := kp.PublicKey()
	return nats.Nkey(pub, kp.Sign), nil
}

// Permissions are what identity may publish and subscribe to on site's
// server; peer is the other site (its JetStream domain). Unknown
// identities get nil: they are not admitted.
func Permissions(site, peer events.SiteID, identity string) *server.Permissions {
	s := string(site)
	pub := []string{
		"drwatch." + s + ".evt." + identity + ".>",
		events.SitePoison(site),
		// Reading the log: infos, durable and ordered consumers,
		// direct and last-message gets, acks and flow control.
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO.*",
		"$JS.API.STREAM.MSG.GET.*",
		"$JS.API.DIRECT.GET.>",
		"$JS.API.CONSUMER.CREATE.>",
		"$JS.API.CONSUMER.DURABLE.CREATE.>",
		"$JS.API.CONSUMER.INFO.>",
		"$JS.API.CONSUMER.NAMES.*",
		"$JS.API.CONSUMER.LIST.*",
		"$JS.API.CONSUMER.DELETE.>",
		"$JS.API.CONSUMER.MSG.NEXT.>",
		"$JS.ACK.>",
		"$JS.FC.>",
	}
	if peer != "" {
		// Reading the peer's store; the peer's server confines it.
		p := "$JS." + string(peer) + ".API."
		pub = append(pub, p+"INFO", p+"STREAM.INFO.*", p+"STREAM.MSG.GET.*", p+"DIRECT.GET.>",
			p+"CONSUMER.CREATE.>", p+"CONSUMER.INFO.>", p+"CONSUMER.DELETE.>", p+"CONSUMER.MSG.NEXT.>")
	}
	switch identity {
	case IdentitySite:
		for _, st := range []string{EventsStream, RolesStream, PoisonStream} {
			pub = append(pub, "$JS.API.STREAM.CREATE."+st, "$JS.API.STREAM.UPDATE."+st)
		}
	case "notifier":
		pub = append(pub, "$JS.API.STREAM.CREATE."+notifierBucket, "$JS.API.STREAM.UPDATE."+notifierBucket,
			"$KV.drwatch_notifier.>")
	case "filesync":
		pub = append(pub, "$JS.API.STREAM.CREATE."+filesBucket, "$JS.API.STREAM.UPDATE."+filesBucket,
			"$O.drwatch_files.>")
	case "heartbeat", "arbiter", "dbmonitor", "orchestrator", IdentityCLI:
	default:
		return nil
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// PeerPermissions are the permissions of the leafnode user the peer's
// server logs in with, as nats-server reads them for a leafnode: publish
// is what the peer may send us, subscribe what it may receive from us; a
// dialing peer's server is told them too. The peer may source EVENTS (a
// consumer filtered on our events), read ROLES and our file bucket, and
// answer our own reads of its store; nothing creates, updates, deletes or
// purges a stream, and no subject of ours is written.
func PeerPermissions(site, peer events.SiteID) *server.Permissions {
	replies := []string{"_INBOX.>", "$JSC.R.>", "$JS.S.>", "$JS.M.>", "$JS.FC.>"}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: append(peerReads(site), replies...)},
		Subscribe: &server.SubjectPermission{Allow: append(peerReads(peer), replies...)},
	}
}

// peerReads are the JetStream API requests a site answers from its peer.
func peerReads(site events.SiteID) []string {
	p := "$JS." + string(site) + ".API."
	return []string{
		p + "INFO",
		p + "STREAM.INFO." + EventsStream, p + "STREAM.INFO." + RolesStream, p + "STREAM.INFO." + filesBucket,
		p + "STREAM.MSG.GET." + EventsStream, p + "STREAM.MSG.GET." + RolesStream, p + "STREAM.MSG.GET." + filesBucket,
		p + "DIRECT.GET." + EventsStream + ".>", p + "DIRECT.GET." + RolesStream + ".>", p + "DIRECT.GET." + filesBucket + ".>",
		// Sourcing: a consumer of our events only, named by the peer's
		// server; and reading the file bucket.
		p + "CONSUMER.CREATE." + EventsStream + ".*." + events.SiteEvents(site),
		p + "CONSUMER.CREATE." + filesBucket + ".>",
		p + "CONSUMER.MSG.NEXT." + filesBucket + ".>",
		p + "CONSUMER.INFO." + filesBucket + ".>",
		p + "CONSUMER.DELETE." + filesBucket + ".>",
	}
}

// peerDenies are what a server that dials its peer refuses to receive from
// it: nats-server lets a dialing leafnode only deny, so these list every
// JetStream API verb that writes, every stream but those PeerPermissions
// opens, and our own subjects.
func peerDenies(site events.SiteID) []string {
	p := "$JS." + string(site) + ".API."
	return []string{
		"drwatch." + string(site) + ".>",
		p + "STREAM.CREATE.>", p + "STREAM.UPDATE.>", p + "STREAM.DELETE.>", p + "STREAM.PURGE.>",
		p + "STREAM.MSG.DELETE.>", p + "STREAM.SNAPSHOT.>", p + "STREAM.RESTORE.>", p + "STREAM.PEER.>",
		p + "STREAM.LEADER.>", p + "STREAM.TEMPLATE.>", p + "ACCOUNT.>", p + "META.>", p + "SERVER.>",
		p + "CONSUMER.DELETE." + EventsStream + ".>", p + "CONSUMER.DELETE." + RolesStream + ".>",
		p + "CONSUMER.PAUSE.>", p + "CONSUMER.LEADER.>", p + "CONSUMER.UNPIN.>",
		p + "CONSUMER.DURABLE.>",
		p + "CONSUMER.*." + PoisonStream + ".>", p + "CONSUMER.*." + PoisonStream,
		p + "CONSUMER.*." + RolesStream + ".>", p + "CONSUMER.*." + RolesStream,
		p + "CONSUMER.*." + notifierBucket + ".>", p + "CONSUMER.*." + notifierBucket,
		p + "STREAM.*." + PoisonStream, p + "STREAM.*." + notifierBucket,
		p + "DIRECT.GET." + PoisonStream + ".>", p + "DIRECT.GET." + notifierBucket + ".>",
		"$KV.>", "$O.>", "$JS.ACK.>",
	}
}
