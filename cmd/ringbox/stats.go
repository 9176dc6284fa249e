package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/ringbox/ringbox/boot"
	"github.com/ringbox/ringbox/platform"
)

// printStats writes the per-vCPU statistics of --stats.
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
		for r := range p.Exits {
			fmt.Fprintf(tw, "%d\t", p.Exits[r])
		}
		var stops uint64
		for _, s := range k.Stops {
			stops += s
		}
		ratio := "-"
		if traps := p.Exits[platform.ExitSyscall] + p.Exits[platform.ExitPageFault] + p.Exits[platform.ExitException] + p.Exits[platform.ExitInterrupt] + p.Exits[platform.ExitOther]; traps > 0 {
			ratio = fmt.Sprintf("%.2f", float64(p.Ioctls)/float64(traps))
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\t%.3f\t\n", k.Syscalls, k.Faults, k.Signals, stops, p.Ioctls, ratio, float64(p.GuestNanos)/1e6)
	}
	tw.Flush()
}
