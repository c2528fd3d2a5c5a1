// Package nfqdelay delays packets in user space: it takes the packets an
// iptables NFQUEUE rule queues and gives each its ACCEPT verdict only after
// a delay of its own. It stands in for tc netem's "delay D J" on kernels
// built without sch_netem: every packet waits D±J (uniform), independently
// of the others, so packets reorder as they do under netem.
//
// It speaks the nfnetlink_queue protocol directly (netlink family
// NETLINK_NETFILTER, subsystem NFNL_SUBSYS_QUEUE) and asks only for each
// packet's metadata, never its payload. The socket belongs to the network
// namespace of the thread that opens it.
package nfqdelay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Constants of linux/netfilter/nfnetlink.h and nfnetlink_queue.h.
const (
	subsysQueue = 3 // NFNL_SUBSYS_QUEUE

	msgPacket  = subsysQueue<<8 | 0 // NFQNL_MSG_PACKET
	msgVerdict = subsysQueue<<8 | 1 // NFQNL_MSG_VERDICT
	msgConfig  = subsysQueue<<8 | 2 // NFQNL_MSG_CONFIG

	attrPacketHdr  = 1 // NFQA_PACKET_HDR
	attrVerdictHdr = 2 // NFQA_VERDICT_HDR

	attrCfgCmd    = 1 // NFQA_CFG_CMD
	attrCfgParams = 2 // NFQA_CFG_PARAMS
	attrCfgMaxLen = 3 // NFQA_CFG_QUEUE_MAXLEN
	attrCfgMask   = 4 // NFQA_CFG_MASK
	attrCfgFlags  = 5 // NFQA_CFG_FLAGS

	cmdBind   = 1 // NFQNL_CFG_CMD_BIND
	cmdUnbind = 2 // NFQNL_CFG_CMD_UNBIND

	copyMeta = 1 // NFQNL_COPY_META: no payload

	flagFailOpen = 1 // NFQA_CFG_F_FAIL_OPEN: a full queue accepts

	verdictAccept = 1 // NF_ACCEPT

	attrTypeMask = 0x3fff // strips NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

// Stats is what a Run did.
type Stats struct {
	Packets  int           // packets queued to it
	Released int           // packets accepted after their delay
	Flushed  int           // packets accepted at once as it stopped
	Overruns int           // times the socket buffer overflowed: fail-open, the kernel accepted undelayed what it could not hand over
	Mean     time.Duration // mean delay given
	Min, Max time.Duration
}

func (s Stats) String() string {
	return fmt.Sprintf("%d packets delayed (mean %s, min %s, max %s), %d accepted undelayed at stop, %d socket overruns",
		s.Released, s.Mean.Round(100*time.Microsecond), s.Min.Round(100*time.Microsecond), s.Max.Round(100*time.Microsecond), s.Flushed, s.Overruns)
}

// Queue is one bound NFQUEUE queue.
type Queue struct {
	fd  int
	num uint16
	seq uint32
	// backlog holds the ids of packets that arrived while Open was still
	// configuring the queue; Run delays them first.
	backlog []uint32

	wmu sync.Mutex // one writer at a time on fd
}

// Open binds queue num in the calling thread's network namespace. Only one
// process may bind a queue number in a namespace.
func Open(num uint16) (*Queue, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("nfqueue: netlink socket: %w", err)
	}
	q := &Queue{fd: fd, num: num}
	if err := q.setup(); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nfqueue %d: %w", num, err)
	}
	return q, nil
}

func (q *Queue) setup() error {
	if err := unix.Bind(q.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	// A large receive buffer: a burst must not overflow it while the
	// reader is busy. FORCE works as root, beyond rmem_max.
	if err := unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
		_ = unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	}
	// Reads wake up now and then, so Run notices its context ending.
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(q.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("receive timeout: %w", err)
	}
	cmd := []byte{cmdBind, 0, 0, unix.AF_INET}
	if err := q.config(attr(attrCfgCmd, cmd)); err != nil {
		return fmt.Errorf("bind queue (is another process bound to it?): %w", err)
	}
	params := binary.BigEndian.AppendUint32(nil, 0)
	params = append(params, copyMeta)
	if err := q.config(attr(attrCfgParams, params)); err != nil {
		return fmt.Errorf("copy mode: %w", err)
	}
	if err := q.config(attr(attrCfgMaxLen, binary.BigEndian.AppendUint32(nil, 65536))); err != nil {
		return fmt.Errorf("queue length: %w", err)
	}
	flags := binary.BigEndian.AppendUint32(nil, flagFailOpen)
	if err := q.config(append(attr(attrCfgFlags, flags), attr(attrCfgMask, flags)...)); err != nil {
		return fmt.Errorf("fail-open: %w", err)
	}
	return nil
}

// Close unbinds the queue. Packets still queued are dropped by the
// kernel, so Run accepts them before it returns.
func (q *Queue) Close() error {
	_ = q.config(attr(attrCfgCmd, []byte{cmdUnbind, 0, 0, unix.AF_INET}))
	return unix.Close(q.fd)
}

// Run gives every queued packet its verdict after delay() has passed,
// until ctx ends; then it stops the queue taking packets (they pass
// undelayed from then on), accepts what is still waiting and returns. A
// Queue runs once.
func (q *Queue) Run(ctx context.Context, delay func() time.Duration) (Stats, error) {
	var (
		mu      sync.Mutex
		st      Stats
		total   time.Duration
		pending = map[uint32]*time.Timer{}
		verr    error
		writing sync.WaitGroup // releases past the pending check
	)
	// Whoever removes a packet from pending, its timer or the flush at
	// stop, gives its verdict: exactly once.
	release := func(id uint32, d time.Duration) {
		mu.Lock()
		if _, ok := pending[id]; !ok {
			mu.Unlock()
			return // flushed at stop
		}
		delete(pending, id)
		writing.Add(1)
		mu.Unlock()
		defer writing.Done()
		err := q.verdict(id)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			verr = errors.Join(verr, err)
			return
		}
		st.Released++
		total += d
		if st.Released == 1 || d < st.Min {
			st.Min = d
		}
		st.Max = max(st.Max, d)
	}

	schedule := func(id uint32) {
		d := max(delay(), 0)
		mu.Lock()
		st.Packets++
		pending[id] = time.AfterFunc(d, func() { release(id, d) })
		mu.Unlock()
	}
	for _, id := range q.backlog {
		schedule(id)
	}
	q.backlog = nil

	buf := make([]byte, 1<<16)
	var runErr error
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(q.fd, buf, 0)
		if err != nil {
			switch {
			case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.ENOBUFS):
				mu.Lock()
				st.Overruns++
				mu.Unlock()
				continue
			}
			runErr = fmt.Errorf("nfqueue %d: receive: %w", q.num, err)
			break
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			runErr = fmt.Errorf("nfqueue %d: malformed netlink message: %w", q.num, err)
			break
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case msgPacket:
				id, ok := packetID(m.Data)
				if !ok {
					runErr = fmt.Errorf("nfqueue %d: packet message without a packet header", q.num)
					break
				}
				schedule(id)
			case unix.NLMSG_ERROR:
				if e := nlError(m.Data); e != nil {
					mu.Lock()
					verr = errors.Join(verr, fmt.Errorf("verdict refused: %w", e))
					mu.Unlock()
				}
			}
		}
		if runErr != nil {
			break
		}
	}

	// Stop queueing before letting go: a full queue fails open (accepts in
	// the kernel), and one of length 0 is always full. The kernel's answer
	// comes after every packet it queued before, so config has read them
	// all into the backlog by the time it returns.
	if err := q.config(attr(attrCfgMaxLen, binary.BigEndian.AppendUint32(nil, 0))); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("nfqueue %d: stop queueing: %w", q.num, err))
	}
	mu.Lock()
	flush := q.backlog
	st.Packets += len(q.backlog)
	q.backlog = nil
	for id, t := range pending {
		t.Stop()
		flush = append(flush, id)
		delete(pending, id)
	}
	mu.Unlock()
	flushed := 0
	for _, id := range flush {
		if err := q.verdict(id); err == nil {
			flushed++
		}
	}
	writing.Wait()
	mu.Lock()
	defer mu.Unlock()
	st.Flushed = flushed
	if st.Released > 0 {
		st.Mean = total / time.Duration(st.Released)
	}
	return st, errors.Join(runErr, verr)
}

// Uniform returns delays drawn uniformly from [d-j, d+j], as netem's
// "delay d j" without correlation.
func Uniform(d, j time.Duration) func() time.Duration {
	return func() time.Duration {
		if j <= 0 {
			return d
		}
		return d - j + rand.N(2*j+1)
	}
}

func (q *Queue) verdict(id uint32) error {
	hdr := binary.BigEndian.AppendUint32(nil, verdictAccept)
	hdr = binary.BigEndian.AppendUint32(hdr, id)
	return q.send(msgVerdict, 0, attr(attrVerdictHdr, hdr))
}

// config sends a configuration message and waits for the kernel's answer.
func (q *Queue) config(attrs []byte) error {
	if err := q.send(msgConfig, unix.NLM_F_ACK, attrs); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(q.fd, buf, 0)
		if err != nil {
			return fmt.Errorf("waiting for the kernel's answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			switch {
			case m.Header.Type == msgPacket:
				// Queued once the bind took: Run must not forget it.
				if id, ok := packetID(m.Data); ok {
					q.backlog = append(q.backlog, id)
				}
			case m.Header.Type == unix.NLMSG_ERROR && m.Header.Seq == q.seq:
				return nlError(m.Data)
			}
		}
	}
}

func (q *Queue) send(typ uint16, flags uint16, attrs []byte) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	q.seq++
	const hdrLen = unix.SizeofNlMsghdr + 4 // nlmsghdr + nfgenmsg
	b := make([]byte, hdrLen, hdrLen+len(attrs))
	binary.NativeEndian.PutUint32(b[0:], uint32(hdrLen+len(attrs)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(b[8:], q.seq)
	// nfgenmsg: family AF_UNSPEC, version NFNETLINK_V0, the queue number.
	binary.BigEndian.PutUint16(b[18:], q.num)
	b = append(b, attrs...)
	return unix.Sendto(q.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(typ uint16, payload []byte) []byte {
	l := 4 + len(payload)
	b := make([]byte, 4, (l+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(l))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// packetID finds NFQA_PACKET_HDR's packet id in a packet message's body
// (nfgenmsg, then attributes).
func packetID(body []byte) (uint32, bool) {
	if len(body) < 4 {
		return 0, false
	}
	for b := body[4:]; len(b) >= 4; {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		typ := binary.NativeEndian.Uint16(b[2:]) & attrTypeMask
		if l < 4 || l > len(b) {
			return 0, false
		}
		if typ == attrPacketHdr && l >= 8 {
			return binary.BigEndian.Uint32(b[4:]), true
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return 0, false
}

// nlError reads an NLMSG_ERROR body: 0 is an acknowledgement.
func nlError(body []byte) error {
	if len(body) < 4 {
		return errors.New("short netlink error message")
	}
	if code := int32(binary.NativeEndian.Uint32(body)); code != 0 {
		return syscall.Errno(-code)
	}
	return nil
}
