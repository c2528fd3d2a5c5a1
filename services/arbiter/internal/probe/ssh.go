package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrHostKey says an arbiter's host key did not verify against knownHosts.
var ErrHostKey = errors.New("arbiter host key not verified")

// SSHTarget is one arbiter reached over SSH, ready to dial: credentials
// read and known_hosts loaded once, at start.
type SSHTarget struct {
	Host string
	Port int
	// Addr is host:port.
	Addr   string
	config *ssh.ClientConfig
}

// SSHTargetOptions are an arbiter's settings as configured.
type SSHTargetOptions struct {
	Host       string
	Port       int
	Username   string
	Password   string
	PrivateKey string
	KnownHosts string
	// Field names the arbiter in errors, e.g.
	// "watchdog.failureDetection.arbiters[2]".
	Field string
}

// NewSSHTarget loads the arbiter's key and known_hosts file.
func NewSSHTarget(o SSHTargetOptions) (*SSHTarget, error) {
	var auth []ssh.AuthMethod
	if o.PrivateKey != "" {
		pem, err := os.ReadFile(o.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("%s.privateKey: %w", o.Field, err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			return nil, fmt.Errorf("%s.privateKey %s: %w (an unencrypted OpenSSH or PEM key is required)", o.Field, o.PrivateKey, err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if o.Password != "" {
		pw := o.Password
		auth = append(auth, ssh.Password(pw),
			// Junos and many appliances offer keyboard-interactive only.
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	if len(auth) == 0 {
		return nil, fmt.Errorf("%s: needs a password or a privateKey", o.Field)
	}
	if o.KnownHosts == "" {
		return nil, fmt.Errorf("%s.knownHosts: is required: arbiter host keys are always verified", o.Field)
	}
	cb, err := knownhosts.New(o.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("%s.knownHosts: %w", o.Field, err)
	}
	addr := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	return &SSHTarget{
		Host: o.Host,
		Port: o.Port,
		Addr: addr,
		config: &ssh.ClientConfig{
			User:            o.Username,
			Auth:            auth,
			HostKeyCallback: explainHostKey(cb, o.KnownHosts),
			ClientVersion:   "SSH-2.0-drwatch-arbiter",
		},
	}, nil
}

// explainHostKey turns knownhosts' errors into ones that tell the operator
// what to do.
func explainHostKey(cb ssh.HostKeyCallback, file string) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return fmt.Errorf("%w: %s is not in knownHosts %s; add its key (ssh-keyscan) after checking its fingerprint %s",
					ErrHostKey, hostname, file, ssh.FingerprintSHA256(key))
			}
			return fmt.Errorf("%w: %s offered %s %s, which does not match knownHosts %s line %d: possible man-in-the-middle or a re-installed arbiter; verify before updating the file",
				ErrHostKey, hostname, key.Type(), ssh.FingerprintSHA256(key), file, ke.Want[0].Line)
		}
		var re *knownhosts.RevokedError
		if errors.As(err, &re) {
			return fmt.Errorf("%w: %s presented a key revoked in %s", ErrHostKey, hostname, file)
		}
		return err
	}
}

// Dialer opens SSH connections to arbiters. LocalAddr, when set, is the
// source address (tests use 127.0.0.x to stand for the two sites).
type Dialer struct {
	LocalAddr net.Addr
}

// Dial connects and authenticates; the connection is closed if ctx ends
// before the handshake is done, and the handshake is bounded by ctx's
// deadline.
func (d Dialer) Dial(ctx context.Context, t *SSHTarget) (*ssh.Client, error) {
	nd := net.Dialer{LocalAddr: d.LocalAddr}
	conn, err := nd.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", t.Addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, t.Addr, t.config)
	if err != nil {
		conn.Close()
		// The conn deadline is ctx's, so it may fire a hair before ctx
		// reports done: both mean the arbiter did not answer in time.
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("ssh %s: handshake did not finish in time: %w", t.Addr, context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("ssh %s: %w", t.Addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// maxOutput bounds what a session command may print; a session list is a
// few kilobytes.
const maxOutput = 1 << 20

// Check logs in to the arbiter, runs command and reports whether its
// output lists a session from one of peers. An arbiter that cannot be
// logged in to (refused, timed out, host key not verified, auth failed) is
// unreachable; one that answers is reachable whether or not it is managed.
func (d Dialer) Check(ctx context.Context, t *SSHTarget, command string, peers PeerSet) Result {
	res := Result{Host: t.Host}
	client, err := d.Dial(ctx, t)
	if err != nil {
		res.Err = err
		return res
	}
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	sess, err := client.NewSession()
	if err != nil {
		res.Err = fmt.Errorf("ssh %s: open session: %w", t.Addr, err)
		return res
	}
	defer sess.Close()
	var out limitedBuffer
	sess.Stdout = &out
	if err := sess.Run(command); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		res.Err = fmt.Errorf("ssh %s: run %q: %w", t.Addr, command, err)
		return res
	}
	res.Reachable = true
	_, res.Managed = ManagedBy(out.String(), peers)
	return res
}

type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.Len(); room < len(p) {
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
