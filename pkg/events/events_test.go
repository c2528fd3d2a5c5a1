package events

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite schema/*.json")

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

var src = Source{Site: "a", Node: "a1", Service: "heartbeat"}

func TestEverySampleRoundTrips(t *testing.T) {
	seen := map[Type]bool{}
	for _, ev := range Examples() {
		t.Run(string(ev.EventType()), func(t *testing.T) {
			seen[ev.EventType()] = true
			env, err := New(src, ev, now, nil)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			data, err := env.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Unmarshal(data)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if diff := cmp.Diff(env, back); diff != "" {
				t.Errorf("envelope changed (-sent +received):\n%s", diff)
			}
			got, err := Decode(back)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(ev, got); diff != "" {
				t.Errorf("payload changed (-sent +received):\n%s", diff)
			}
		})
	}
	for _, typ := range Types() {
		if !seen[typ] {
			t.Errorf("registered type %s has no sample: add one to Examples()", typ)
		}
	}
}

func TestCausationAndCorrelation(t *testing.T) {
	root, err := New(src, RoleChanged{From: RoleStandby, To: RoleActive, Epoch: 1, Reason: "x"}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(root.CorrelationID) != string(root.ID) {
		t.Errorf("root correlation = %q, want its own id %q", root.CorrelationID, root.ID)
	}
	child, err := New(src, RoleChanged{From: RoleActive, To: RoleStandby, Epoch: 1, Reason: "y"}, now, root)
	if err != nil {
		t.Fatal(err)
	}
	if child.CorrelationID != root.CorrelationID || child.CausationID != root.ID {
		t.Errorf("child correlation/causation = %q/%q, want %q/%q", child.CorrelationID, child.CausationID, root.CorrelationID, root.ID)
	}
	if child.ID == root.ID {
		t.Error("two events share an id")
	}
}

func TestInvalidEventsRejectedOnPublish(t *testing.T) {
	tests := []struct {
		name string
		src  Source
		ev   Event
		want string
	}{
		{"missing field", src, RemoteUnreachable{Peer: "b", Line: "vip", Since: now}, "failed: is required"},
		{"bad enum", src, RoleChanged{From: "boss", To: RoleActive, Reason: "x"}, "from: must be one of"},
		{"bad site in payload", src, FailoverRequested{Target: "Site B", ToRole: RoleActive, Reason: "x", RequestedBy: "me"}, "target: must be lower-case"},
		{"share over one", src, ArbiterQuorumLow{N: 1, Warning: 1.5}, "warning: must be at most 1"},
		{"bad source site", Source{Site: "A.B", Node: "n", Service: "s"}, RoleChanged{From: RoleStandby, To: RoleActive, Reason: "x"}, "site: must be lower-case"},
		{"bad service token", Source{Site: "a", Node: "n", Service: "hb.x"}, RoleChanged{From: RoleStandby, To: RoleActive, Reason: "x"}, "service: must be letters"},
		{"nil", src, nil, "nil event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.src, tt.ev, now, nil)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestInvalidEnvelopesRejectedOnReceipt(t *testing.T) {
	good, err := New(src, RoleChanged{From: RoleStandby, To: RoleActive, Epoch: 1, Reason: "x"}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := good.Marshal()
	tests := []struct {
		name    string
		data    []byte
		wantErr error
		want    string
	}{
		{"not json", []byte("garbage{"), ErrUndecodable, "invalid character"},
		{"no id", bytes.Replace(data, []byte(`"id":"`+string(good.ID)+`"`), []byte(`"id":""`), 1), ErrInvalid, "id: is required"},
		{"future schema", bytes.Replace(data, []byte(`"schemaVersion":1`), []byte(`"schemaVersion":9`), 1), ErrInvalid, "schemaVersion 9 is newer"},
		{"no payload", bytes.Replace(data, []byte(`"payload":`), []byte(`"payloadX":`), 1), ErrInvalid, "payload: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Unmarshal(tt.data)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.want)
			}
		})
	}

	t.Run("payload breaks its rules", func(t *testing.T) {
		env := *good
		env.Payload = []byte(`{"from":"standby","to":"emperor","epoch":1,"reason":"x"}`)
		if _, err := Decode(&env); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "to: must be one of") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("payload of wrong shape", func(t *testing.T) {
		env := *good
		env.Payload = []byte(`{"epoch":"two"}`)
		if _, err := Decode(&env); !errors.Is(err, ErrUndecodable) {
			t.Fatalf("err = %v, want ErrUndecodable", err)
		}
	})
	t.Run("unknown type", func(t *testing.T) {
		env := *good
		env.Type = "Nonsense"
		if _, err := Decode(&env); !errors.Is(err, ErrUnknownType) {
			t.Fatalf("err = %v, want ErrUnknownType", err)
		}
	})
}

func TestMuxRoutesTypedHandlers(t *testing.T) {
	var got []Epoch
	mux := NewMux().On(Handle(func(_ context.Context, _ *Envelope, ev RoleChanged) error {
		got = append(got, ev.Epoch)
		return nil
	}))
	for i, ev := range []Event{RoleChanged{From: RoleStandby, To: RoleActive, Epoch: 7, Reason: "x"}, ConfigChecked{OK: true}} {
		env, err := New(src, ev, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := mux.Handle(context.Background(), env); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if diff := cmp.Diff([]Epoch{7}, got); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
}

func TestSubjects(t *testing.T) {
	env, err := New(src, ConfigChecked{OK: true}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	subj := Subject(env)
	if subj != "drwatch.a.evt.heartbeat.ConfigChecked" {
		t.Fatalf("subject = %q", subj)
	}
	site, svc, typ, err := ParseSubject(subj)
	if err != nil || site != "a" || svc != "heartbeat" || typ != "ConfigChecked" {
		t.Fatalf("ParseSubject = %q %q %q %v", site, svc, typ, err)
	}
	if _, _, _, err := ParseSubject("drwatch.a.poison.x"); err == nil {
		t.Error("poison subject parsed as event subject")
	}
}

// TestPublishedSchemasAreCurrent keeps schema/*.json in step with the Go
// types. Run `go test ./pkg/events -update` after changing an event.
func TestPublishedSchemasAreCurrent(t *testing.T) {
	for _, typ := range Types() {
		want, err := JSONSchema(typ)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("schema", string(typ)+".json")
		if *update {
			if err := os.MkdirAll("schema", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, append(want, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./pkg/events -update)", err)
		}
		if !bytes.Equal(bytes.TrimSpace(got), want) {
			t.Errorf("%s is stale: run go test ./pkg/events -update", path)
		}
	}
}
