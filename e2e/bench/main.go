// Command bench measures cnat on the kind cluster where `make deploy` put it,
// side by side with the Kubernetes CronJob controller. Its scenarios (the
// letters are the names they had first, and still work):
//
//	start-lag (A)  an At at a sub-second instant T; lag = the pod's ADDED
//	               event at this program's watch − T
//	burst (B)      N Ats at one T; first/last pod ADDED − T; time until all
//	               are DONE; the same N pods created directly, as the ceiling
//	cronjob (C)    the same as CronJobs firing on a minute boundary,
//	               interleaved with start-lag (and with burst, N CronJobs)
//	api-cost (D)   writes (At MODIFIED events + pod create and release) and reconciles per
//	               start-lag run
//	memory (E)     the manager container's memory: idle, and with many
//	               PENDING Ats and unrelated pods that never run
//	finished (F)   finished Ats at rest: many DONE Ats with their succeeded
//	               pods kept (written by this program while the manager is
//	               scaled to 0, copying one real run) and unrelated pods; the
//	               manager's memory once it has synced them, and how long after
//	               its pod is deleted a new At's pod appears
//	burst10k (G)   B at 10,000: Ats due at one instant whose pods never run
//	               (a scheduling gate), last pod ADDED − T, the manager's
//	               memory and restarts meanwhile; the same pods created
//	               directly, as the ceiling
//
// B also times each of its three bursts to the end: all Ats DONE, all direct
// pods Succeeded, all CronJob pods Succeeded.
//
// The manager's memory is read with crictl in the kind node its pod runs on
// (the pod's spec.nodeName, read at each sample).
//
// It prints a Markdown table and writes bench.json. `make bench` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// The scenarios, and the letters that name them too.
const (
	startLag = "start-lag"
	burstRun = "burst"
	cronJobs = "cronjob"
	apiCosts = "api-cost"
	memoryUp = "memory"
	finished = "finished"
	burst10k = "burst10k"
)

var (
	scenarioNames   = []string{startLag, burstRun, cronJobs, apiCosts, memoryUp, finished, burst10k}
	scenarioLetters = map[rune]string{
		'A': startLag, 'B': burstRun, 'C': cronJobs, 'D': apiCosts, 'E': memoryUp, 'F': finished, 'G': burst10k,
	}
)

// parseScenarios reads --scenarios: names separated by commas, or letters
// ("AD", "ACDBE"), or both.
func parseScenarios(list string) (map[string]bool, error) {
	on := map[string]bool{}
	for _, word := range strings.Split(list, ",") {
		word = strings.TrimSpace(word)
		if slices.Contains(scenarioNames, word) {
			on[word] = true
			continue
		}
		for _, letter := range word {
			name, ok := scenarioLetters[letter]
			if !ok {
				return nil, fmt.Errorf("--scenarios: %q is neither a scenario (%s) nor letters A-G", word, strings.Join(scenarioNames, ", "))
			}
			on[name] = true
		}
	}
	if len(on) == 0 {
		return nil, errors.New("--scenarios names no scenario")
	}
	if on[apiCosts] && !on[startLag] {
		return nil, errors.New("--scenarios: api-cost counts over the start-lag trials; add start-lag")
	}
	return on, nil
}

type options struct {
	kubeContext     string
	image           string
	scenarios       map[string]bool
	trials          int
	cronPerMinute   int
	cronTrials      int
	burst           int
	cronBurst       int
	burstLead       time.Duration
	burstDoneWait   time.Duration
	memoryAts       int
	memoryPods      int
	finishedAts     int
	finishedPods    int
	burst10k        int
	burst10kLead    time.Duration
	workers         int
	out             string
	managerSelector string
}

func parseFlags() (options, error) {
	var o options
	cluster := envOr("KIND_CLUSTER_NAME", "cnat")
	scenarios := flag.String("scenarios", strings.Join(scenarioNames, ","),
		"scenarios to run, separated by commas: start-lag, burst, cronjob, api-cost (needs start-lag), memory, finished, burst10k; or their letters A B C D E F G")
	flag.StringVar(&o.kubeContext, "context", "kind-"+cluster, "kubeconfig context of the cluster")
	flag.StringVar(&o.image, "image", envOr("RUN_IMAGE", "busybox:1.37"), "image the CronJob pods run (the Ats use the manager's default)")
	flag.IntVar(&o.trials, "trials", 30, "A: single-At trials")
	flag.IntVar(&o.cronTrials, "cron-trials", 30, "C: single CronJob trials")
	flag.IntVar(&o.cronPerMinute, "cron-per-minute", 5, "C: CronJobs firing on each minute boundary")
	flag.IntVar(&o.burst, "burst", 1000, "B: Ats scheduled at the same instant")
	flag.IntVar(&o.cronBurst, "cron-burst", 1000, "C: CronJobs firing on the same minute boundary")
	flag.DurationVar(&o.burstLead, "burst-lead", 30*time.Second, "B: how far ahead the burst's instant is (room to create N objects)")
	flag.DurationVar(&o.burstDoneWait, "burst-done-wait", 8*time.Minute,
		"B: how long to wait, for each of the three bursts, for every At to be DONE and every direct and CronJob pod to have Succeeded")
	flag.IntVar(&o.memoryAts, "memory-ats", 10000, "E: PENDING Ats")
	flag.IntVar(&o.memoryPods, "memory-pods", 10000, "E: unrelated pods that never run")
	flag.IntVar(&o.finishedAts, "finished-ats", 20000, "F: DONE Ats, each with its succeeded pod")
	flag.IntVar(&o.finishedPods, "finished-pods", 10000, "F: unrelated pods that never run")
	flag.IntVar(&o.burst10k, "burst10k", 10000, "G: Ats scheduled at the same instant, whose pods never run")
	flag.DurationVar(&o.burst10kLead, "burst10k-lead", 3*time.Minute,
		"G: how far ahead the instant is (room to create the Ats and for the manager to mark them PENDING)")
	flag.IntVar(&o.workers, "workers", 16, "parallel creates")
	flag.StringVar(&o.out, "out", envOr("ARTIFACTS", "_artifacts")+"/bench", "folder for bench.json")
	flag.StringVar(&o.managerSelector, "manager-selector", "control-plane=controller-manager", "label selector of the manager pod")
	flag.Parse()
	var err error
	o.scenarios, err = parseScenarios(*scenarios)
	return o, err
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func main() {
	o, err := parseFlags()
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	// Ctrl-C ends the scenarios through their context, so that their clean-up
	// runs (above all, F scales the manager back up); a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	defer stop()
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
	b := &bench{o: o, c: c, cfg: cfg}
	if err := b.checkManager(ctx); err != nil {
		return err
	}
	start := time.Now()
	on := o.scenarios
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
	scenario("memory (idle)", on[memoryUp], b.memoryIdle)
	scenario("start-lag/cronjob/api-cost", on[startLag] || on[cronJobs], func(ctx context.Context) error {
		return b.singles(ctx, on[startLag], on[cronJobs], on[apiCosts])
	})
	scenario("burst", on[burstRun], func(ctx context.Context) error { return b.bursts(ctx, on[cronJobs]) })
	scenario("memory (loaded)", on[memoryUp], b.memoryLoaded)
	scenario("finished", on[finished], b.finishedAtRest)
	scenario("burst10k", on[burst10k], b.burst10kRun)
	b.results.WallSeconds = time.Since(start).Seconds()
	b.results.printTable()
	return errors.Join(append(failed, b.results.writeJSON(b.o.out))...)
}

type bench struct {
	o       options
	c       client.WithWatch
	cfg     *rest.Config
	results results
}

func (b *bench) checkManager(ctx context.Context) error {
	if _, err := b.reconciles(ctx); err != nil {
		return fmt.Errorf("the manager's metrics do not answer (make deploy): %w", err)
	}
	return nil
}
