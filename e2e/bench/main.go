// Command bench measures cnat on the kind cluster where `make deploy` put it,
// side by side with the Kubernetes CronJob controller:
//
//	A  single-At start lag: an At at a sub-second instant T; lag = the pod's
//	   ADDED event at this program's watch − T
//	B  burst: N Ats at one T; first/last pod ADDED − T; time until all are DONE
//	C  the same as CronJobs firing on a minute boundary, interleaved with A
//	D  API cost: writes (At MODIFIED events + pods) and reconciles per run
//	E  the manager container's memory: idle, and with many PENDING Ats and
//	   unrelated pods that never run
//
// It prints a Markdown table and writes bench.json. `make bench` runs it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

type options struct {
	kubeContext     string
	image           string
	scenarios       string
	trials          int
	cronPerMinute   int
	cronTrials      int
	burst           int
	cronBurst       int
	burstLead       time.Duration
	burstDoneWait   time.Duration
	memoryAts       int
	memoryPods      int
	workers         int
	nodeContainer   string
	out             string
	managerSelector string
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.kubeContext, "context", "kind-cnat", "kubeconfig context of the cluster")
	flag.StringVar(&o.image, "image", envOr("RUN_IMAGE", "busybox:1.37"), "image the CronJob pods run (the Ats use the manager's default)")
	flag.StringVar(&o.scenarios, "scenarios", "ACDBE", "scenarios to run, any of A B C D E (D needs A)")
	flag.IntVar(&o.trials, "trials", 30, "A: single-At trials")
	flag.IntVar(&o.cronTrials, "cron-trials", 30, "C: single CronJob trials")
	flag.IntVar(&o.cronPerMinute, "cron-per-minute", 5, "C: CronJobs firing on each minute boundary")
	flag.IntVar(&o.burst, "burst", 1000, "B: Ats scheduled at the same instant")
	flag.IntVar(&o.cronBurst, "cron-burst", 1000, "C: CronJobs firing on the same minute boundary")
	flag.DurationVar(&o.burstLead, "burst-lead", 30*time.Second, "B: how far ahead the burst's instant is (room to create N objects)")
	flag.DurationVar(&o.burstDoneWait, "burst-done-wait", 8*time.Minute, "B: how long to wait for every burst At to be DONE")
	flag.IntVar(&o.memoryAts, "memory-ats", 10000, "E: PENDING Ats")
	flag.IntVar(&o.memoryPods, "memory-pods", 10000, "E: unrelated pods that never run")
	flag.IntVar(&o.workers, "workers", 16, "parallel creates")
	flag.StringVar(&o.nodeContainer, "node", "cnat-control-plane", "the kind node container (for crictl stats)")
	flag.StringVar(&o.out, "out", envOr("ARTIFACTS", "_artifacts")+"/bench", "folder for bench.json")
	flag.StringVar(&o.managerSelector, "manager-selector", "control-plane=controller-manager", "label selector of the manager pod")
	flag.Parse()
	return o
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func main() {
	o := parseFlags()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := cnatv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(),
		&clientcmd.ConfigOverrides{CurrentContext: o.kubeContext}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig context %s: %w", o.kubeContext, err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	b := &bench{o: o, c: c, cfg: cfg, results: map[string]float64{}}
	if err := b.checkManager(ctx); err != nil {
		return err
	}
	start := time.Now()
	has := func(s string) bool { return strings.Contains(strings.ToUpper(o.scenarios), s) }
	// A failed scenario is reported; the others still run and are printed.
	var failed []error
	scenario := func(name string, enabled bool, run func(context.Context) error) {
		if !enabled {
			return
		}
		// Cancelling stops the scenario's watches when it is over.
		scenarioCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		if err := run(scenarioCtx); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", name, err)
			failed = append(failed, fmt.Errorf("%s: %w", name, err))
		}
	}
	scenario("E (idle)", has("E"), b.memoryIdle)
	scenario("A/C/D", has("A") || has("C"), func(ctx context.Context) error { return b.singles(ctx, has("A"), has("C"), has("D")) })
	scenario("B", has("B"), func(ctx context.Context) error { return b.bursts(ctx, has("C")) })
	scenario("E (loaded)", has("E"), b.memoryLoaded)
	b.results["wall_s"] = time.Since(start).Seconds()
	b.printTable()
	return errors.Join(append(failed, b.writeJSON())...)
}

// requiredKeys are in bench.json even when a scenario did not run or did not
// finish, as null, so that a reader can tell "not measured" from a typo.
var requiredKeys = []string{
	"single_p50_ms", "single_p99_ms", "cronjob_single_p50_ms", "cronjob_single_p99_ms",
	"burst_n", "burst_last_pod_s", "cronjob_burst_last_pod_s", "burst_all_done_s",
	"writes_per_run", "reconciles_per_run", "memory_idle_mib", "memory_loaded_mib",
}

func (b *bench) writeJSON() error {
	if err := os.MkdirAll(b.o.out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(b.o.out, "bench.json")
	out := map[string]any{}
	for _, key := range requiredKeys {
		out[key] = nil // a figure this run did not measure
	}
	for key, value := range b.results {
		out[key] = value
	}
	raw, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	abs, _ := filepath.Abs(path)
	fmt.Println("\nbench.json:", abs)
	return nil
}
