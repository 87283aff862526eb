package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPUTimes is the first line of /proc/stat: the time all cores together
// have spent, in clock ticks since boot. Busy is everything but idle and
// iowait (a core waiting on the disk runs nothing).
type CPUTimes struct {
	Busy, Idle uint64
}

// ParseCPUStat reads the aggregate "cpu" line of /proc/stat (user nice
// system idle iowait irq softirq steal guest guest_nice; kernels before
// 2.6.33 stop earlier). guest and guest_nice are already inside user and
// nice, so they are not added again.
func ParseCPUStat(r io.Reader) (CPUTimes, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		f = f[1:]
		if len(f) < 4 {
			return CPUTimes{}, fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 4", len(f))
		}
		var v [8]uint64
		for i := 0; i < len(f) && i < len(v); i++ {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return CPUTimes{}, fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
			}
			v[i] = n
		}
		const user, nice, system, idle, iowait, irq, softirq, steal = 0, 1, 2, 3, 4, 5, 6, 7
		t := CPUTimes{Idle: v[idle] + v[iowait]}
		for _, i := range []int{user, nice, system, irq, softirq, steal} {
			t.Busy += v[i]
		}
		if t.Busy < v[user] || t.Idle < v[idle] { // overflowed: not a real counter
			return CPUTimes{}, errors.New("/proc/stat: cpu counters overflow")
		}
		return t, nil
	}
	if err := sc.Err(); err != nil {
		return CPUTimes{}, fmt.Errorf("/proc/stat: %w", err)
	}
	return CPUTimes{}, errors.New("/proc/stat: no cpu line")
}

// BusyPercent is how busy all cores were between two samples, in percent of
// all cores (100 = every core busy all the time). It is false when no tick
// passed between them or the counters went backwards.
func BusyPercent(from, to CPUTimes) (float64, bool) {
	if to.Busy < from.Busy || to.Idle < from.Idle {
		return 0, false
	}
	busy, idle := to.Busy-from.Busy, to.Idle-from.Idle
	if busy+idle == 0 {
		return 0, false
	}
	return 100 * float64(busy) / float64(busy+idle), true
}

// readCPU samples /proc/stat.
func readCPU() (CPUTimes, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return CPUTimes{}, err
	}
	defer func() { _ = f.Close() }() // read only
	return ParseCPUStat(f)
}

// cpuWindow measures how busy the machine was over a span: begin once,
// end once. Without /proc/stat (not Linux) it measures nothing.
type cpuWindow struct {
	from    CPUTimes
	fromAt  time.Time
	started bool
}

func (w *cpuWindow) begin() {
	t, err := readCPU()
	if err != nil {
		return
	}
	w.from, w.fromAt, w.started = t, time.Now(), true
}

// end returns the busy percentage since begin and the span it covers.
func (w *cpuWindow) end() (busy float64, span time.Duration, ok bool) {
	if !w.started {
		return 0, 0, false
	}
	t, err := readCPU()
	if err != nil {
		return 0, 0, false
	}
	busy, ok = BusyPercent(w.from, t)
	return busy, time.Since(w.fromAt), ok
}
