package dedupe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrConflict is returned by Store.Put when the entry changed since the
// revision read: another replica (or attempt) got there first. The caller
// reads again and decides again.
var ErrConflict = errors.New("dedupe entry changed concurrently")

// Store keeps entries with compare-and-set revisions. Revision 0 means
// "absent": Get returns it for an unknown key, Put with it only creates.
type Store interface {
	Get(ctx context.Context, key string) (*Entry, uint64, error)
	Put(ctx context.Context, key string, e Entry, rev uint64) (uint64, error)
}

// Memory is a Store in process memory: for tests, benchmarks and a
// notifier running without JetStream. It does not survive a restart.
type Memory struct {
	mu      sync.Mutex
	rev     uint64
	entries map[string]memEntry
}

type memEntry struct {
	e   Entry
	rev uint64
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory { return &Memory{entries: map[string]memEntry{}} }

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) (*Entry, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	me, ok := m.entries[key]
	if !ok {
		return nil, 0, nil
	}
	e := me.e
	return &e, me.rev, nil
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, key string, e Entry, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries[key].rev != rev {
		return 0, fmt.Errorf("%w: %s at revision %d, not %d", ErrConflict, key, m.entries[key].rev, rev)
	}
	m.rev++
	m.entries[key] = memEntry{e: e, rev: m.rev}
	return m.rev, nil
}

// KV is a Store in a JetStream key-value bucket of the site's domain: the
// window survives restarts and is shared by every replica of the notifier.
type KV struct {
	kv jetstream.KeyValue
}

// DefaultBucket is the bucket the notifier keeps its windows in.
const DefaultBucket = "drwatch_notifier"

// NewKV creates (or updates) the bucket and returns a Store over it.
func NewKV(ctx context.Context, js jetstream.JetStream, bucket string) (*KV, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "drwatch notifier: per-error mail windows and in-flight claims",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("notifier KV bucket %s: %w", bucket, err)
	}
	return &KV{kv: kv}, nil
}

// kvKey maps a readable key, which may hold any character, to the
// alphabet KV keys allow; the readable key is kept inside the entry.
func kvKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	prefix := key
	if i := strings.IndexByte(key, '/'); i > 0 {
		prefix = key[:i] // the site, so `nats kv ls` groups by site
	}
	var b strings.Builder
	for _, r := range prefix {
		if r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String() + "." + hex.EncodeToString(sum[:20])
}

// Get implements Store.
func (s *KV) Get(ctx context.Context, key string) (*Entry, uint64, error) {
	kve, err := s.kv.Get(ctx, kvKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read dedupe entry %s: %w", key, err)
	}
	var e Entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		// A damaged entry must not block mail forever: treat it as absent
		// but keep its revision so the next Put replaces it.
		return nil, kve.Revision(), nil
	}
	return &e, kve.Revision(), nil
}

// Put implements Store.
func (s *KV) Put(ctx context.Context, key string, e Entry, rev uint64) (uint64, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("encode dedupe entry %s: %w", key, err)
	}
	k := kvKey(key)
	var n uint64
	if rev == 0 {
		n, err = s.kv.Create(ctx, k, data)
	} else {
		n, err = s.kv.Update(ctx, k, data, rev)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return 0, fmt.Errorf("%w: %s: %v", ErrConflict, key, err)
	case err != nil:
		return 0, fmt.Errorf("write dedupe entry %s: %w", key, err)
	}
	return n, nil
}
