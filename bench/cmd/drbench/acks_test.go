package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAcks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "writer.log")
	base := time.Unix(1000, 0)
	at := func(ms int) int64 { return base.Add(time.Duration(ms) * time.Millisecond).UnixNano() }
	// seq, sent, acked: seq 2 was sent before the kill (t=25) and acked
	// after it by the dying site; seq 3 is the first write sent after it.
	content := fmt.Sprintf("=== banner\n1 %d %d\n2 %d %d\n3 %d %d\n4 %d", at(0), at(5), at(20), at(30), at(40), at(900), at(950))
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &acks{t: tail{path: path}}
	a.poll()
	kill := base.Add(25 * time.Millisecond)
	got, ok := a.firstSentAfter(kill)
	if !ok || !got.Equal(base.Add(900*time.Millisecond)) {
		t.Errorf("firstSentAfter = %v, %v; want the ack of seq 3", got, ok)
	}
	if diff := cmp.Diff([]int64{1}, a.between(time.Time{}, kill)); diff != "" {
		t.Errorf("between (-want +got):\n%s", diff)
	}
	// The partial last line is read once it is complete.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, " %d\n", at(1010))
	f.Close()
	a.poll()
	if diff := cmp.Diff([]int64{2, 3, 4}, a.between(kill, base.Add(2*time.Second))); diff != "" {
		t.Errorf("between after append (-want +got):\n%s", diff)
	}
}
