package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

// podWitness watches every pod of a namespace for a whole run: which pod
// names were ever seen with which UIDs. A name seen with two UIDs is a
// command run twice.
type podWitness struct {
	mu   sync.Mutex
	uids map[string]map[types.UID]bool
	stop context.CancelFunc
}

// watchPods starts a podWitness on ns; onAdd, if set, sees every new pod.
func watchPods(ctx context.Context, t *testing.T, clientset kubernetes.Interface, ns string, onAdd func(*corev1.Pod)) *podWitness {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	w := &podWitness{uids: map[string]map[types.UID]bool{}, stop: cancel}
	factory := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithNamespace(ns))
	informer := factory.Core().V1().Pods().Informer()
	see := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.uids[pod.Name] == nil {
			w.uids[pod.Name] = map[types.UID]bool{}
		}
		if !w.uids[pod.Name][pod.UID] && onAdd != nil {
			onAdd(pod)
		}
		w.uids[pod.Name][pod.UID] = true
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    see,
		UpdateFunc: func(_, obj any) { see(obj) },
	}); err != nil {
		t.Fatalf("watching pods: %v", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		t.Fatal("the pod watch never synced")
	}
	return w
}

// duplicates lists the pod names seen with more than one UID.
func (w *podWitness) duplicates() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for name, uids := range w.uids {
		if len(uids) > 1 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func (w *podWitness) seen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.uids)
}

// forceDeleteManager deletes the manager's pods with no grace: no shutdown,
// no lease release, as a node that died.
func forceDeleteManager(ctx context.Context, clientset kubernetes.Interface) error {
	return clientset.CoreV1().Pods(managerNamespace).DeleteCollection(ctx,
		metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)},
		metav1.ListOptions{LabelSelector: "control-plane=controller-manager"})
}

// killManagerInPlace SIGKILLs the manager's container on the node; the
// kubelet restarts it in the same pod.
func killManagerInPlace(ctx context.Context) error {
	script := "crictl ps -q --name '^manager$' --label io.kubernetes.pod.namespace=" + managerNamespace +
		" | xargs -r crictl stop --timeout 0"
	out, err := exec.CommandContext(ctx, "docker", "exec", kindCluster.Name+"-control-plane", "sh", "-c", script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("SIGKILL of the manager container: %w: %s", err, out)
	}
	return nil
}

// createAts creates n Ats in ns, the i-th due at schedule(i).
func createAts(ctx context.Context, t *testing.T, cfg *envconf.Config, ns string, n int, command string, schedule func(int) time.Time) {
	t.Helper()
	for i := range n {
		obj := &cnatv1alpha1.At{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("chaos-%03d", i), Namespace: ns},
			Spec:       cnatv1alpha1.AtSpec{Schedule: schedule(i).UTC().Format(time.RFC3339Nano), Command: command},
		}
		if err := cfg.Client().Resources().Create(ctx, obj); err != nil {
			t.Fatalf("creating At %d: %v", i, err)
		}
	}
}

// waitAllDone waits until every At in ns is DONE and returns them by name.
func waitAllDone(ctx context.Context, t *testing.T, cfg *envconf.Config, ns string, n int, timeout time.Duration) map[string]cnatv1alpha1.At {
	t.Helper()
	var list cnatv1alpha1.AtList
	err := wait.For(conditions.New(cfg.Client().Resources(ns)).ResourceListMatchN(&list, n, func(o k8s.Object) bool {
		return o.(*cnatv1alpha1.At).Status.Phase == cnatv1alpha1.PhaseDone
	}), wait.WithTimeout(timeout), wait.WithInterval(time.Second), wait.WithContext(ctx))
	if err != nil {
		var phases []string
		_ = cfg.Client().Resources(ns).List(ctx, &list)
		for _, a := range list.Items {
			if a.Status.Phase != cnatv1alpha1.PhaseDone {
				phases = append(phases, a.Name+"="+string(a.Status.Phase)+"/"+a.Status.Reason)
			}
		}
		t.Fatalf("not every At DONE within %s: %v; not DONE: %s", timeout, err, strings.Join(phases, " "))
	}
	byName := map[string]cnatv1alpha1.At{}
	for _, a := range list.Items {
		byName[a.Name] = a
	}
	return byName
}

// waitForLeadingManager waits until a manager is Available and leading: an
// At due now runs to DONE. The features after a chaos run need one.
func waitForLeadingManager(ctx context.Context, t *testing.T, cfg *envconf.Config) {
	t.Helper()
	err := wait.For(conditions.New(cfg.Client().Resources()).DeploymentAvailable(managerDeployment, managerNamespace),
		wait.WithTimeout(2*time.Minute), wait.WithContext(ctx))
	if err != nil {
		t.Fatalf("manager not Available again: %v", err)
	}
	probeCtx := createAt(ctx, t, cfg, time.Now(), "true")
	waitForAt(probeCtx, t, cfg, "DONE after the chaos", 2*time.Minute, phaseIs(cnatv1alpha1.PhaseDone))
}

func TestChaosKillsAndDeletions(t *testing.T) {
	const (
		ats       = 100
		spread    = 40 * time.Second
		killEvery = 5 * time.Second
	)
	f := feature("Ats coming due while the manager is killed and pods are deleted run once and all end", "chaos").
		Assess("every At DONE, no command run twice", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ns, clientset := namespaceOf(ctx), clientsetOf(t, cfg)
			var deleted sync.Map // At name → pod deleted the moment it appeared
			var deleteErrs []error
			var mu sync.Mutex
			witness := watchPods(ctx, t, clientset, ns, func(pod *corev1.Pod) {
				var i int
				if _, err := fmt.Sscanf(pod.Annotations[at.AtNameAnnotation], "chaos-%d", &i); err != nil || i%10 != 0 {
					return
				}
				deleted.Store(pod.Annotations[at.AtNameAnnotation], true)
				go func() {
					err := clientset.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
					if err != nil {
						mu.Lock()
						deleteErrs = append(deleteErrs, err)
						mu.Unlock()
					}
				}()
			})
			defer witness.stop()

			start := time.Now()
			first := start.Add(10 * time.Second)
			createAts(ctx, t, cfg, ns, ats, "echo ran; sleep 2", func(i int) time.Time {
				return first.Add(spread * time.Duration(i) / ats)
			})
			kills := map[string]int{}
			for tick := 0; time.Now().Before(first.Add(spread + killEvery)); tick++ {
				time.Sleep(killEvery)
				kind, kill := "force-delete", func() error { return forceDeleteManager(ctx, clientset) }
				if tick%2 == 1 {
					kind, kill = "SIGKILL", func() error { return killManagerInPlace(ctx) }
				}
				if err := kill(); err != nil {
					t.Errorf("%s of the manager: %v", kind, err)
					continue
				}
				kills[kind]++
			}
			done := waitAllDone(ctx, t, cfg, ns, ats, 6*time.Minute)
			allDone := time.Since(start)

			deletedCount := 0
			for name, a := range done {
				if _, was := deleted.Load(name); was {
					deletedCount++
					continue
				}
				if a.Status.Result != cnatv1alpha1.ResultSucceeded {
					t.Errorf("At %s, whose pod was left alone, ended %s/%s: %s", name, a.Status.Result, a.Status.Reason, a.Status.Message)
				}
			}
			dups := witness.duplicates()
			if len(dups) > 0 {
				t.Errorf("pods seen with two UIDs (commands run twice): %v", dups)
			}
			if len(deleteErrs) > 0 {
				t.Errorf("deleting pods as they appeared: %v", deleteErrs)
			}
			t.Logf("chaos: %d Ats over %s; kills %v; %d pods deleted as they appeared; %d pod names seen, %d seen twice; all DONE %s after the first creation",
				ats, spread, kills, deletedCount, witness.seen(), len(dups), allDone.Round(time.Second))
			waitForLeadingManager(ctx, t, cfg)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}

// holdRunning installs a ValidatingAdmissionPolicy that refuses every status
// write of RUNNING in ns: it holds open, for as long as the test wants, the
// window between a pod's creation and its At's RUNNING.
func holdRunning(ctx context.Context, t *testing.T, cfg *envconf.Config, ns string) func() {
	t.Helper()
	name := "cnat-e2e-hold-running-" + ns
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{cnatv1alpha1.GroupVersion.Group},
						APIVersions: []string{cnatv1alpha1.GroupVersion.Version}, Resources: []string{"ats/status"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "!has(object.status) || !has(object.status.phase) || object.status.phase != 'RUNNING'",
				Message:    "e2e: writes of RUNNING are held",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}},
		},
	}
	r := cfg.Client().Resources()
	for _, obj := range []k8s.Object{policy, binding} {
		if err := r.Create(ctx, obj); err != nil {
			t.Fatalf("creating %s: %v", obj.GetName(), err)
		}
	}
	// A new policy takes a moment to reach the API server's admission: wait
	// until a dry-run write of RUNNING on a probe At is refused.
	probe := &cnatv1alpha1.At{
		ObjectMeta: metav1.ObjectMeta{Name: "hold-probe", Namespace: ns},
		Spec:       cnatv1alpha1.AtSpec{Schedule: "2099-01-01T00:00:00Z", Command: "true"},
	}
	if err := r.Create(ctx, probe); err != nil {
		t.Fatalf("creating the probe At: %v", err)
	}
	c, err := client.New(cfg.Client().RESTConfig(), client.Options{Scheme: r.GetScheme()})
	if err != nil {
		t.Fatal(err)
	}
	err = wait.For(func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(probe), probe); err != nil {
			return false, err
		}
		probe.Status.Phase = cnatv1alpha1.PhaseRunning
		err := c.Status().Update(ctx, probe, client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), "writes of RUNNING are held"), nil
	}, wait.WithTimeout(30*time.Second), wait.WithInterval(200*time.Millisecond), wait.WithContext(ctx))
	if err != nil {
		t.Fatalf("the policy holding RUNNING never took effect: %v", err)
	}
	return func() {
		for _, obj := range []k8s.Object{binding, policy} {
			if err := r.Delete(ctx, obj); err != nil {
				t.Errorf("deleting %s: %v", obj.GetName(), err)
			}
		}
	}
}

func TestChaosInsideTheCreationToRunningWindow(t *testing.T) {
	const ats = 10
	f := feature("a manager killed and the pods deleted between creation and RUNNING: no second run", "chaos").
		Assess("every At DONE PodDeleted, every pod name with one UID", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ns, clientset := namespaceOf(ctx), clientsetOf(t, cfg)
			witness := watchPods(ctx, t, clientset, ns, nil)
			defer witness.stop()
			release := holdRunning(ctx, t, cfg, ns)
			createAts(ctx, t, cfg, ns, ats, "echo ran; sleep 30", func(int) time.Time { return time.Now() })

			// Every pod created, and every At still short of RUNNING.
			var pods corev1.PodList
			err := wait.For(conditions.New(cfg.Client().Resources(ns)).ResourceListN(&pods, ats,
				resources.WithLabelSelector(at.ManagedByLabel+"="+at.ManagedByValue)), wait.WithTimeout(time.Minute), wait.WithContext(ctx))
			if err != nil {
				t.Fatalf("the %d pods were not created: %v", ats, err)
			}
			var list cnatv1alpha1.AtList
			if err := cfg.Client().Resources(ns).List(ctx, &list); err != nil {
				t.Fatal(err)
			}
			for _, a := range list.Items {
				if a.Status.Phase == cnatv1alpha1.PhaseRunning {
					t.Fatalf("At %s is RUNNING: the policy did not hold the window open", a.Name)
				}
			}
			if err := forceDeleteManager(ctx, clientset); err != nil {
				t.Fatal(err)
			}
			err = clientset.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)},
				metav1.ListOptions{LabelSelector: at.ManagedByLabel + "=" + at.ManagedByValue})
			if err != nil {
				t.Fatal(err)
			}
			release()

			done := waitAllDone(ctx, t, cfg, ns, ats, 3*time.Minute)
			delete(done, "hold-probe")
			for name, a := range done {
				if a.Status.Result != cnatv1alpha1.ResultFailed || a.Status.Reason != cnatv1alpha1.ReasonPodDeleted {
					t.Errorf("At %s ended %s/%s (%s), want Failed/PodDeleted", name, a.Status.Result, a.Status.Reason, a.Status.Message)
				}
			}
			if err := wait.For(conditions.New(cfg.Client().Resources(ns)).ResourcesDeleted(&pods),
				wait.WithTimeout(time.Minute), wait.WithContext(ctx)); err != nil {
				t.Errorf("the deleted pods were not released: %v", err)
			}
			dups := witness.duplicates()
			if len(dups) > 0 {
				t.Errorf("pods seen with two UIDs (commands run twice): %v", dups)
			}
			t.Logf("window: %d Ats held short of RUNNING, manager force-deleted, %d pods deleted; %d pod names seen, %d second runs",
				ats, ats, witness.seen(), len(dups))
			waitForLeadingManager(ctx, t, cfg)
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
