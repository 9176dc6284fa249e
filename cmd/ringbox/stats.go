package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ringbox/ringbox/boot"
	"github.com/ringbox/ringbox/kernel"
	"github.com/ringbox/ringbox/platform"
)

// stopKindNames are the column names of the stop kinds.
var stopKindNames = [kernel.NumStopKinds]string{
	kernel.StopSignalDelivery: "signal",
	kernel.StopGroup:          "group",
	kernel.StopSyscallEnter:   "sys_enter",
	kernel.StopSyscallExit:    "sys_exit",
	kernel.StopEvent:          "event",
	kernel.StopSingleStep:     "step",
}

// printStats writes the per-vCPU statistics of --stats: the mechanism's
// exits and host ioctls (KVM) or ptrace requests, the kernel's syscalls,
// faults and signals, and the stops of tasks that were last on each vCPU
// (ptrace-stops and group stops) with their mean stop-to-resume latency.
func printStats(w io.Writer, sb *boot.Sandbox) {
	ks := sb.Kernel().CPUs()
	ps := sb.Platform().Stats()
	fmt.Fprintf(w, "ringbox stats (platform %s)\n", sb.Platform().Name())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "vcpu\t")
	for r := platform.ExitReason(0); r < platform.NumExitReasons; r++ {
		fmt.Fprintf(tw, "exit:%s\t", r)
	}
	fmt.Fprint(tw, "syscalls\tfaults\tsignals\tstops\tioctls\tioctls/trap\tguest_ms\t\n")
	for i, k := range ks {
		var p platform.CPUStats
		if i < len(ps) {
			p = ps[i]
		}
		fmt.Fprintf(tw, "%d\t", i)
		var traps uint64
		for r := range p.Exits {
			fmt.Fprintf(tw, "%d\t", p.Exits[r])
			traps += p.Exits[r]
		}
		ratio := "-"
		if traps > 0 {
			ratio = fmt.Sprintf("%.2f", float64(p.Ioctls)/float64(traps))
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\t%.3f\t\n", k.Syscalls, k.Faults, k.Signals, totalStops(k), p.Ioctls, ratio, float64(p.GuestNanos)/1e6)
	}
	tw.Flush()

	fmt.Fprintln(w, "stops by kind")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "vcpu\t")
	for _, n := range stopKindNames {
		fmt.Fprintf(tw, "%s\t", n)
	}
	fmt.Fprint(tw, "mean_stop_to_resume\t\n")
	for i, k := range ks {
		fmt.Fprintf(tw, "%d\t", i)
		for _, s := range k.Stops {
			fmt.Fprintf(tw, "%d\t", s)
		}
		mean := "-"
		if n := totalStops(k); n > 0 {
			mean = (time.Duration(k.StopNanos / n)).Round(time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%s\t\n", mean)
	}
	tw.Flush()
}

func totalStops(k kernel.CPUStats) uint64 {
	var n uint64
	for _, s := range k.Stops {
		n += s
	}
	return n
}
