package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

// leaderLease is the manager's leader election lease (cmd/main.go).
const leaderLease = "cnat.programming-kubernetes.info"

// drainHowTo is how to run the drain feature on a cluster that has the
// workers it needs.
const drainHowTo = "run it with `make test-drain` (kind cluster cnat-multi, NODES=3: a control plane and 2 workers)"

// schedulableWorkers lists the Ready nodes, other than control planes, that
// take new pods: where the drained node's pods can go.
func schedulableWorkers(ctx context.Context, t *testing.T, cfg *envconf.Config) []string {
	t.Helper()
	var nodes corev1.NodeList
	if err := cfg.Client().Resources().List(ctx, &nodes); err != nil {
		t.Fatalf("listing nodes: %v", err)
	}
	var workers []string
	for _, n := range nodes.Items {
		if isControlPlane(&n) || n.Spec.Unschedulable || !nodeReady(&n) ||
			slices.ContainsFunc(n.Spec.Taints, func(taint corev1.Taint) bool { return taint.Effect != corev1.TaintEffectPreferNoSchedule }) {
			continue
		}
		workers = append(workers, n.Name)
	}
	sort.Strings(workers)
	return workers
}

func isControlPlane(n *corev1.Node) bool {
	_, labelled := n.Labels["node-role.kubernetes.io/control-plane"]
	return labelled || slices.ContainsFunc(n.Spec.Taints, func(taint corev1.Taint) bool {
		return taint.Key == "node-role.kubernetes.io/control-plane"
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// managerPod waits until exactly one manager pod runs, Ready and not going
// away, and returns it.
func managerPod(ctx context.Context, t *testing.T, cfg *envconf.Config, timeout time.Duration) corev1.Pod {
	t.Helper()
	var found []corev1.Pod
	err := wait.For(func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := cfg.Client().Resources(managerNamespace).List(ctx, &pods,
			resources.WithLabelSelector("control-plane=controller-manager")); err != nil {
			return false, err
		}
		found = slices.DeleteFunc(pods.Items, func(p corev1.Pod) bool { return p.DeletionTimestamp != nil || !podReady(&p) })
		return len(pods.Items) == 1 && len(found) == 1, nil
	}, wait.WithTimeout(timeout), wait.WithInterval(time.Second), wait.WithContext(ctx))
	if err != nil {
		t.Fatalf("no single Ready manager pod within %s (%d Ready): %v", timeout, len(found), err)
	}
	return found[0]
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// runCounter counts, per At, the pods (name and UID) ever seen running its
// command: exactly one each is "ran once".
type runCounter struct {
	mu   sync.Mutex
	runs map[string]int
}

func (c *runCounter) add(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs[pod.Annotations[at.AtNameAnnotation]]++
}

func (c *runCounter) of(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[name]
}

// createDrainAt creates an At in ns due at schedule; pinned to node when node
// is set, through a template that only places the pod.
func createDrainAt(ctx context.Context, t *testing.T, cfg *envconf.Config, ns, name, node string, schedule time.Time, command string) {
	t.Helper()
	obj := &cnatv1alpha1.At{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       cnatv1alpha1.AtSpec{Schedule: schedule.UTC().Format(time.RFC3339Nano), Command: command},
	}
	if node != "" {
		obj.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			NodeSelector: map[string]string{corev1.LabelHostname: node},
			Containers:   []corev1.Container{},
		}}
	}
	if err := cfg.Client().Resources().Create(ctx, obj); err != nil {
		t.Fatalf("creating At %s: %v", name, err)
	}
}

// waitPinnedRunning waits until every pinned At is RUNNING and its pod's
// command container has started on node.
func waitPinnedRunning(ctx context.Context, t *testing.T, cfg *envconf.Config, ns string, names []string, node string) {
	t.Helper()
	r := cfg.Client().Resources(ns)
	var missing []string
	err := wait.For(func(ctx context.Context) (bool, error) {
		missing = nil
		for _, name := range names {
			var a cnatv1alpha1.At
			if err := r.Get(ctx, name, ns, &a); err != nil {
				return false, err
			}
			if a.Status.Phase != cnatv1alpha1.PhaseRunning {
				missing = append(missing, name+"="+string(a.Status.Phase)+"/"+a.Status.Reason)
				continue
			}
			var pod corev1.Pod
			if err := r.Get(ctx, a.Status.PodName, ns, &pod); err != nil {
				return false, err
			}
			if pod.Spec.NodeName != node || !commandRunning(&pod) {
				missing = append(missing, fmt.Sprintf("%s: pod on %q, phase %s", name, pod.Spec.NodeName, pod.Status.Phase))
			}
		}
		return len(missing) == 0, nil
	}, wait.WithTimeout(2*time.Minute), wait.WithInterval(500*time.Millisecond), wait.WithContext(ctx))
	if err != nil {
		t.Fatalf("the pinned Ats never all ran on %s: %v; not yet: %s", node, err, strings.Join(missing, ", "))
	}
}

func commandRunning(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == at.ContainerName && cs.State.Running != nil {
			return true
		}
	}
	return false
}

// drainNode cordons node and evicts its pods as `kubectl drain
// --ignore-daemonsets --delete-emptydir-data` does (the same library), waiting
// until every evicted pod is gone. It returns the pods it evicted, as
// namespace/name.
func drainNode(ctx context.Context, t *testing.T, clientset kubernetes.Interface, node string, timeout time.Duration) []string {
	t.Helper()
	var mu sync.Mutex
	var evicted []string
	var failures []string
	helper := &drain.Helper{
		Ctx:                 ctx,
		Client:              clientset,
		GracePeriodSeconds:  -1, // each pod's own terminationGracePeriodSeconds
		IgnoreAllDaemonSets: true,
		DeleteEmptyDirData:  true,
		Timeout:             timeout,
		Out:                 logWriter{t},
		ErrOut:              logWriter{t},
		OnPodDeletionOrEvictionFinished: func(pod *corev1.Pod, usingEviction bool, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failures = append(failures, fmt.Sprintf("%s/%s: %v", pod.Namespace, pod.Name, err))
			case !usingEviction:
				failures = append(failures, fmt.Sprintf("%s/%s: deleted, not evicted", pod.Namespace, pod.Name))
			default:
				evicted = append(evicted, pod.Namespace+"/"+pod.Name)
			}
		},
	}
	if err := drain.RunCordonOrUncordon(helper, nodeObject(ctx, t, clientset, node), true); err != nil {
		t.Fatalf("cordoning %s: %v", node, err)
	}
	// Uncordoned whatever happens next, on a context of its own: the
	// feature's may be done by then.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		uncordon := &drain.Helper{Ctx: ctx, Client: clientset, Out: logWriter{t}, ErrOut: logWriter{t}}
		if err := drain.RunCordonOrUncordon(uncordon, nodeObject(ctx, t, clientset, node), false); err != nil {
			t.Errorf("uncordoning %s: %v (run: kubectl uncordon %s)", node, err, node)
		}
	})
	if err := drain.RunNodeDrain(helper, node); err != nil {
		t.Fatalf("draining %s: %v; evictions that failed: %v", node, err, failures)
	}
	if len(failures) > 0 {
		t.Fatalf("draining %s: %v", node, failures)
	}
	sort.Strings(evicted)
	return evicted
}

func nodeObject(ctx context.Context, t *testing.T, clientset kubernetes.Interface, name string) *corev1.Node {
	t.Helper()
	node, err := clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading node %s: %v", name, err)
	}
	return node
}

// logWriter sends the drain's progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// recordersOf counts the Events of reason in ns by the manager instance
// (its pod) that reported them: whether the evicted manager recorded the
// runs' end during its graceful shutdown, or its successor did.
func recordersOf(ctx context.Context, t *testing.T, clientset kubernetes.Interface, ns, reason string) map[string]int {
	t.Helper()
	events, err := clientset.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("listing the Events of %s: %v", ns, err)
		return nil
	}
	by := map[string]int{}
	for _, e := range events.Items {
		if e.Reason == reason && e.Regarding.Kind == "At" {
			by[e.ReportingInstance]++
		}
	}
	return by
}

func TestDrain(t *testing.T) {
	const (
		pinned = 8
		later  = 3
		// The later Ats come due after the drain: by then the manager runs
		// on the other worker, and the drained node is cordoned.
		laterFirst = 45 * time.Second
		laterEvery = 5 * time.Second
	)
	f := feature("draining the node of the manager and of long runs: every At DONE, none run twice", "drain").
		Assess("evicted runs end Failed/PodDeleted, later ones run once elsewhere, no second run", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			workers := schedulableWorkers(ctx, t, cfg)
			if len(workers) < 2 {
				t.Fatalf("the drain needs at least 2 schedulable worker nodes, cluster %s has %d (%v): "+
					"the drained node's pods, the manager among them, must have somewhere to go; %s",
					kindCluster.Name, len(workers), workers, drainHowTo)
			}
			manager := managerPod(ctx, t, cfg, 2*time.Minute)
			node := manager.Spec.NodeName
			if !slices.Contains(workers, node) {
				t.Fatalf("the manager pod %s runs on %s, which is not a schedulable worker (%v): a control plane is tainted and should never get it",
					manager.Name, node, workers)
			}

			ns, clientset := namespaceOf(ctx), clientsetOf(t, cfg)
			runs := &runCounter{runs: map[string]int{}}
			witness := watchPods(ctx, t, clientset, ns, runs.add)
			defer witness.stop()

			start := time.Now()
			var pinnedNames, laterNames []string
			for i := range pinned {
				name := fmt.Sprintf("drained-%d", i)
				createDrainAt(ctx, t, cfg, ns, name, node, start.Add(3*time.Second), "sleep 600")
				pinnedNames = append(pinnedNames, name)
			}
			for i := range later {
				name := fmt.Sprintf("later-%d", i)
				createDrainAt(ctx, t, cfg, ns, name, "", start.Add(laterFirst+time.Duration(i)*laterEvery), "echo ran once")
				laterNames = append(laterNames, name)
			}
			waitPinnedRunning(ctx, t, cfg, ns, pinnedNames, node)
			running := time.Since(start)

			drainStart := time.Now()
			evicted := drainNode(ctx, t, clientset, node, 4*time.Minute)
			drained := time.Since(drainStart)
			drainedAt := time.Since(start)
			if !slices.Contains(evicted, managerNamespace+"/"+manager.Name) {
				t.Errorf("the drain did not evict the manager pod %s: evicted %v", manager.Name, evicted)
			}
			inNamespace := 0
			for _, p := range evicted {
				if strings.HasPrefix(p, ns+"/") {
					inNamespace++
				}
			}
			if inNamespace != pinned {
				t.Errorf("the drain evicted %d pods of %s, want the %d pinned runs: %v", inNamespace, ns, pinned, evicted)
			}

			done := waitAllDone(ctx, t, cfg, ns, pinned+later, 3*time.Minute)
			allDone := time.Since(start)
			var results []string
			for _, name := range pinnedNames {
				a := done[name]
				// Eviction deletes the pod: the operator sees its
				// deletionTimestamp, held by the run finalizer, before the pod
				// can go, and records PodDeleted; that the kubelet meanwhile
				// kills sleep (phase Failed, exit 137) does not change it, as
				// a pod being deleted is judged PodDeleted (internal/at/decide.go
				// observe). "was deleted" instead of "is being deleted" would
				// mean the pod went before DONE was stored: the finalizer failed.
				if a.Status.Result != cnatv1alpha1.ResultFailed || a.Status.Reason != cnatv1alpha1.ReasonPodDeleted ||
					!strings.Contains(a.Status.Message, "is being deleted") {
					t.Errorf("evicted At %s ended %s/%s (%s), want Failed/PodDeleted, recorded while its pod was being deleted",
						name, a.Status.Result, a.Status.Reason, a.Status.Message)
				}
				results = append(results, fmt.Sprintf("%s=%s/%s", name, a.Status.Result, a.Status.Reason))
			}
			for _, name := range laterNames {
				a := done[name]
				if a.Status.Result != cnatv1alpha1.ResultSucceeded {
					t.Errorf("At %s, due after the drain, ended %s/%s (%s), want Succeeded", name, a.Status.Result, a.Status.Reason, a.Status.Message)
				}
				pod := requireOnePod(ctx, t, cfg, &a)
				if pod.Spec.NodeName == node {
					t.Errorf("At %s ran on the drained (cordoned) node %s", name, node)
				}
				results = append(results, fmt.Sprintf("%s=%s/%s on %s", name, a.Status.Result, a.Status.Reason, pod.Spec.NodeName))
			}
			for _, name := range append(slices.Clone(pinnedNames), laterNames...) {
				if n := runs.of(name); n != 1 {
					t.Errorf("At %s had %d pods, want exactly 1", name, n)
				}
			}
			dups := witness.duplicates()
			if len(dups) > 0 {
				t.Errorf("pods seen with two UIDs (commands run twice): %v", dups)
			}
			if seen := witness.seen(); seen != pinned+later {
				t.Errorf("%d pod names seen in %s, want %d: one per At", seen, ns, pinned+later)
			}

			recorders := recordersOf(ctx, t, clientset, ns, string(cnatv1alpha1.ResultFailed))

			moved := managerPod(ctx, t, cfg, 2*time.Minute)
			if moved.Spec.NodeName == node || !slices.Contains(workers, moved.Spec.NodeName) {
				t.Errorf("the manager now runs on %s, want another worker than the drained %s (%v)", moved.Spec.NodeName, node, workers)
			}
			// Which manager stored the evicted runs' DONE: one stored before
			// the new manager acquired the leader lease can only be the
			// evicted one's, before or during its graceful shutdown.
			byEvicted := -1
			lease, err := clientset.CoordinationV1().Leases(managerNamespace).Get(ctx, leaderLease, metav1.GetOptions{})
			switch {
			case err != nil:
				t.Errorf("reading the leader lease: %v", err)
			case lease.Spec.HolderIdentity == nil || !strings.HasPrefix(*lease.Spec.HolderIdentity, moved.Name+"_") || lease.Spec.AcquireTime == nil:
				t.Logf("the leader lease is not (yet) the new manager's: %+v", lease.Spec)
			default:
				byEvicted = 0
				for _, name := range pinnedNames {
					if c := done[name].Status.CompletionTime; c != nil && c.Before(lease.Spec.AcquireTime) {
						byEvicted++
					}
				}
			}
			t.Logf("drain: %d pinned Ats RUNNING on %s %s after creation; drain of %s (%d pods evicted, the manager %s among them) took %s, done %s after creation; later Ats due from %s; manager moved to %s as %s; all DONE %s after creation; %s; Failed Events by %v, %d of the evicted Ats DONE before the new manager led (-1: unknown); %d pod names seen, %d seen twice",
				pinned, node, running.Round(100*time.Millisecond), node, len(evicted), manager.Name, drained.Round(100*time.Millisecond),
				drainedAt.Round(100*time.Millisecond), laterFirst, moved.Spec.NodeName, moved.Name, allDone.Round(100*time.Millisecond),
				strings.Join(results, " "), recorders, byEvicted, witness.seen(), len(dups))
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
