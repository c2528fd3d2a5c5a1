package nfqdelay

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestUniformStaysInItsWindow(t *testing.T) {
	f := Uniform(50*time.Millisecond, 50*time.Millisecond)
	var lo, hi int
	for range 10000 {
		d := f()
		if d < 0 || d > 100*time.Millisecond {
			t.Fatalf("delay %s outside [0, 100ms]", d)
		}
		if d < 10*time.Millisecond {
			lo++
		}
		if d > 90*time.Millisecond {
			hi++
		}
	}
	if lo == 0 || hi == 0 {
		t.Errorf("10000 draws never reached the window's ends (%d below 10ms, %d above 90ms)", lo, hi)
	}
	if d := Uniform(5*time.Millisecond, 0)(); d != 5*time.Millisecond {
		t.Errorf("no jitter: %s, want 5ms", d)
	}
}

func TestPacketID(t *testing.T) {
	body := []byte{0, 0, 0, 7} // nfgenmsg
	body = append(body, attr(9, []byte{1, 2, 3})...)
	hdr := binary.BigEndian.AppendUint32(nil, 4242)
	body = append(body, attr(attrPacketHdr|0x8000, append(hdr, 0x08, 0x00, 3))...)
	if id, ok := packetID(body); !ok || id != 4242 {
		t.Errorf("packetID = %d, %v; want 4242, true", id, ok)
	}
	for _, bad := range [][]byte{nil, {0, 0, 0, 7}, {0, 0, 0, 7, 200, 0, 1, 0}, append([]byte{0, 0, 0, 7}, attr(9, nil)...)} {
		if _, ok := packetID(bad); ok {
			t.Errorf("packetID(%v) found an id", bad)
		}
	}
}

// TestDelaysRealPackets queues UDP datagrams sent over a namespace's
// loopback and checks each arrives, late by its own delay, some out of
// order.
func TestDelaysRealPackets(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (a network namespace and iptables), and CI runs as root")
		}
		t.Skip("needs root: a network namespace and an iptables NFQUEUE rule")
	}
	ns := namespaceWithQueue(t, "udp", "9999", "7")

	var q *Queue
	inNamespace(t, ns, func() error {
		var err error
		if q, err = Open(7); err != nil {
			return err
		}
		if q2, err := Open(7); err == nil {
			q2.Close()
			return fmt.Errorf("a second Open of queue 7 in the same namespace succeeded")
		} else {
			t.Logf("second Open: %v", err)
		}
		return nil
	})
	defer q.Close()
	rx, tx := udpPair(t, ns, 9999)

	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := q.Run(ctx, Uniform(40*time.Millisecond, 30*time.Millisecond))
		done <- result{st, err}
	}()

	const n = 200
	sent := make([]time.Time, n)
	type arrival struct {
		i  int
		at time.Time
	}
	arrivals := make(chan arrival, n)
	rxErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 16)
		_ = rx.SetReadDeadline(time.Now().Add(10 * time.Second))
		for range n {
			m, err := rx.Read(buf)
			if err != nil {
				rxErr <- err
				return
			}
			arrivals <- arrival{int(binary.BigEndian.Uint32(buf[:m])), time.Now()}
		}
		rxErr <- nil
	}()
	for i := range n {
		sent[i] = time.Now()
		if _, err := tx.Write(binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := <-rxErr; err != nil {
		t.Fatalf("after %d of %d datagrams: %v", len(arrivals), n, err)
	}
	close(arrivals)
	var order []int
	var delays []time.Duration
	for a := range arrivals {
		order = append(order, a.i)
		delays = append(delays, a.at.Sub(sent[a.i]))
	}
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.st.Packets != n || r.st.Released != n {
		t.Errorf("stats %+v, want %d packets queued and released", r.st, n)
	}
	slices.Sort(delays)
	// The delay is a lower bound: no datagram may arrive before it.
	if delays[0] < 10*time.Millisecond {
		t.Errorf("fastest datagram took %s, want at least the 10ms floor", delays[0])
	}
	if spread := delays[n*9/10] - delays[n/10]; spread < 20*time.Millisecond {
		t.Errorf("delays from the 10th to the 90th percentile spread over %s only: no jitter", spread)
	}
	if slices.IsSorted(order) {
		t.Error("datagrams arrived in the order sent: independent delays reorder them")
	}
	t.Logf("%s; delays p10 %s p50 %s p90 %s", r.st, delays[n/10], delays[n/2], delays[n*9/10])
}

// namespaceWithQueue makes a network namespace whose loopback sends the
// proto packets to port through NFQUEUE queue, with --queue-bypass, so
// they pass while nobody has bound the queue.
func namespaceWithQueue(t *testing.T, proto, port, queue string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (a network namespace and iptables), and CI runs as root")
		}
		t.Skip("needs root: a network namespace and an iptables NFQUEUE rule")
	}
	ns := fmt.Sprintf("nfqd-%d-%s", os.Getpid(), t.Name())
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	sh("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	sh("ip", "-n", ns, "link", "set", "lo", "up")
	sh("ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-p", proto, "--dport", port, "-j", "NFQUEUE", "--queue-num", queue, "--queue-bypass")
	return ns
}

// TestBindUnderTrafficLosesNothing binds the queue while datagrams flow
// and stops it while they still flow: every datagram arrives. Those
// waiting when Run stops are accepted, not dropped with the queue, and
// those sent after pass undelayed (any queued while Open configures the
// queue are given their verdict too; the log line says how many there
// were).
func TestBindUnderTrafficLosesNothing(t *testing.T) {
	ns := namespaceWithQueue(t, "udp", "9998", "8")
	rx, tx := udpPair(t, ns, 9998)
	_ = rx.SetReadBuffer(4 << 20)

	stopSend := make(chan struct{})
	sentc := make(chan int, 1)
	go func() {
		n := 0
		defer func() { sentc <- n }()
		for {
			select {
			case <-stopSend:
				return
			default:
			}
			if _, err := tx.Write([]byte{byte(n)}); err != nil {
				return
			}
			n++
			time.Sleep(100 * time.Microsecond)
		}
	}()
	received := make(chan int, 1)
	go func() {
		n := 0
		buf := make([]byte, 8)
		for {
			_ = rx.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := rx.Read(buf); err != nil {
				received <- n
				return
			}
			n++
		}
	}()

	time.Sleep(50 * time.Millisecond)
	var q *Queue
	inNamespace(t, ns, func() error {
		var err error
		q, err = Open(8)
		return err
	})
	backlog := len(q.backlog)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	st, err := q.Run(ctx, Uniform(100*time.Millisecond, 0))
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	close(stopSend)
	sent := <-sentc
	got := <-received
	if got != sent {
		t.Errorf("sent %d datagrams, received %d (%s; %d queued during Open)", sent, got, st, backlog)
	}
	if st.Packets == 0 || st.Flushed == 0 || st.Packets != st.Released+st.Flushed {
		t.Errorf("stats %+v: want packets both released and flushed at stop, and every one of them given a verdict", st)
	}
	t.Logf("sent %d, received %d; %s; %d queued during Open", sent, got, st, backlog)
}

// udpPair opens, inside ns, a UDP socket on 127.0.0.1:port and one sending
// to it; both close when the test ends.
func udpPair(t *testing.T, ns string, port int) (rx, tx *net.UDPConn) {
	t.Helper()
	inNamespace(t, ns, func() error {
		var err error
		if rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
			return err
		}
		tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		return err
	})
	t.Cleanup(func() { rx.Close(); tx.Close() })
	return rx, tx
}

// inNamespace runs f on a thread inside the named network namespace; the
// sockets f opens stay in it.
func inNamespace(t *testing.T, ns string, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is not unlocked: it ends with the goroutine, so it
		// never returns to the pool inside the namespace.
		target, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
