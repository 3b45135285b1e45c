package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in
// /proc/PID/stat; Linux fixes it at 100 for user space on every
// architecture Go supports.
const clockTicksPerSecond = 100

// CPUSeconds returns the user+system CPU time the process pid has used so
// far, read from /proc/PID/stat (utime + stime). pid 0 means this process.
func CPUSeconds(pid int) (float64, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU extracts utime+stime (fields 14 and 15) from the text of
// /proc/PID/stat. The command name (field 2) is in parentheses and may
// hold spaces or parentheses, so fields are counted after the last ')'.
func parseStatCPU(stat string) (float64, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("proc stat: no command name in %q", stat)
	}
	// After ')' come field 3 (state), 4, ...: utime is field 14, the
	// 12th after the name.
	fields := strings.Fields(stat[end+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the command name, want at least 13", len(fields))
	}
	utime, err := strconv.ParseUint(fields[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc stat utime: %w", err)
	}
	stime, err := strconv.ParseUint(fields[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc stat stime: %w", err)
	}
	return float64(utime+stime) / clockTicksPerSecond, nil
}

// LoadAvg1m returns the 1-minute load average from /proc/loadavg (0 if
// unreadable): how busy the machine was with anything, this run included.
func LoadAvg1m() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// MachineBusySeconds returns the CPU seconds all CPUs have spent busy
// since boot (user, nice, system, irq, softirq and steal time from the
// "cpu" line of /proc/stat; idle and iowait excluded).
func MachineBusySeconds() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineBusy(string(b))
}

func parseMachineBusy(stat string) (float64, error) {
	for _, line := range strings.Split(stat, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq steal
		var busy uint64
		for _, i := range []int{1, 2, 3, 6, 7, 8} {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("proc stat cpu field %d: %w", i, err)
			}
			busy += v
		}
		return float64(busy) / clockTicksPerSecond, nil
	}
	return 0, fmt.Errorf("proc stat: no cpu line")
}
