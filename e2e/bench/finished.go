package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/e2e/internal/scrape"
	"github.com/programming-kubernetes/cnat/internal/at"
)

// Bounds of the finished scenario's waits.
const (
	finishedCleanup = 15 * time.Minute // 2 namespaces with up to 50,000 objects
	managerSync     = 10 * time.Minute // the manager listing and reconciling every At
	syncQuiet       = 6 * time.Second  // no reconcile for this long: synced
	restartBound    = 5 * time.Minute  // a new At's pod after the manager pod's deletion
)

// finishedAtRest is F: the state users accumulate, DONE Ats each with its
// succeeded pod kept, plus unrelated pods; the manager's memory once it has
// synced them, and how soon after its pod is deleted it runs a new At.
//
// Running 20,000 pods is out of reach of this machine, so the state is
// written, not run: one real At is run to DONE, and its final status and its
// pod's are copied onto every fake one while the manager is scaled to 0 (it
// neither runs the fake Ats, due in the past, nor sees them half written).
// The fake pods are the manager's pod (at.PodFor) without the run finalizer
// and labelled released (at.ReleasedLabel), as a finished run leaves it, and
// with a scheduling gate, so that no scheduler or kubelet ever touches them;
// the gate is their one difference from a real finished pod, with
// spec.nodeName empty (the API server refuses a node name on a gated pod).
func (b *bench) finishedAtRest(ctx context.Context) error {
	f := &b.results.Finished
	f.Ats, f.Pods = b.o.finishedAts, b.o.finishedPods
	ns, pods, ats, err := b.watchedNamespace(ctx, "bench-finished")
	if err != nil {
		return err
	}
	defer b.deleteNamespaceWithin(ctx, ns, finishedCleanup)
	podNS, err := b.namespace(ctx, "bench-finished-pods")
	if err != nil {
		return err
	}
	defer b.deleteNamespaceWithin(ctx, podNS, finishedCleanup)

	doneAt, donePod, err := b.runTemplateAt(ctx, ns, pods, ats)
	if err != nil {
		return err
	}
	dep, err := b.managerDeployment(ctx)
	if err != nil {
		return err
	}
	replicas := ptr.Deref(dep.Spec.Replicas, 1)
	// Whatever happens from here, the manager comes back; registered last,
	// it runs before the namespaces' deletion, which needs it to release
	// the real runs' pods.
	defer b.restoreManager(ctx, dep.Name, replicas)
	if err := b.scaleManager(ctx, dep, 0); err != nil {
		return err
	}
	if err := b.waitManagerGone(ctx, 2*time.Minute); err != nil {
		return err
	}
	start := time.Now()
	if err := b.writeFinished(ctx, ns, doneAt, donePod); err != nil {
		return err
	}
	err = b.parallel(ctx, b.o.finishedPods, func(i int) error {
		return b.c.Create(ctx, unschedulablePod(podNS, fmt.Sprintf("idle-%d", i), b.o.image))
	})
	if err != nil {
		return fmt.Errorf("creating unrelated pods: %w", err)
	}
	f.SetupS = ptr.To(time.Since(start).Seconds())
	fmt.Printf("finished: %d DONE Ats with their pods and %d unrelated pods written in %s\n",
		b.o.finishedAts, b.o.finishedPods, time.Since(start).Round(time.Second))

	// The manager, scaled back up, syncs; its memory is sampled meanwhile
	// (the start-up peak) and then at rest.
	up := time.Now()
	startup := b.startSampling(ctx, 2*time.Second)
	if err := b.scaleManager(ctx, dep, replicas); err != nil {
		return err
	}
	atLeast := float64(b.o.finishedAts + 1)
	if err := b.waitSynced(ctx, atLeast, syncQuiet, managerSync); err != nil {
		return err
	}
	f.SyncedS = ptr.To(time.Since(up).Seconds())
	startPeak, startErr := startup.finish()
	first, err := b.managerState(ctx)
	if err != nil {
		return err
	}
	synced, err := b.sampleFor(ctx, 10, 2*time.Second)
	if err != nil {
		return err
	}
	f.SyncedMiB, f.MemoryMiB = &synced, ptr.To(synced)
	fmt.Printf("finished: synced %.1f s after the scale-up; %.1f MiB at rest\n", *f.SyncedS, synced)

	// Restart: the first new At after the manager pod's deletion.
	var errs []error
	if first.restarts > 0 {
		f.ManagerRestarts = ptr.To(int(first.restarts))
		errs = append(errs, fmt.Errorf("the manager restarted %d times while it synced (last termination: %s)", first.restarts, first.lastReason))
	}
	if restarts, err := b.restartsSince(ctx, first); err != nil {
		f.ManagerRestarts = ptr.To(restarts + int(first.restarts))
		errs = append(errs, fmt.Errorf("at rest: %w", err))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	restartPeak, restartErr := b.restartManager(ctx, ns, pods, first, atLeast+1)
	if restartErr != nil {
		errs = append(errs, restartErr)
	}
	for _, peak := range []struct {
		v   float64
		err error
	}{{startPeak, startErr}, {restartPeak, restartErr}} {
		if peak.err == nil && peak.v > 0 {
			f.StartPeakMiB = ptr.To(max(ptr.Deref(f.StartPeakMiB, 0), peak.v))
		}
	}
	if startErr != nil {
		fmt.Printf("finished: no start-up sample: %v\n", startErr)
	}
	if f.RestartMiB != nil {
		f.MemoryMiB = ptr.To(max(*f.MemoryMiB, *f.RestartMiB))
	}
	return errors.Join(errs...)
}

// restartManager deletes the manager's pod (gracefully) at t0 and, once the
// old manager is gone, creates an At due at t0: the time to its pod is how
// long the Ats were left unserved. (Created at once, it would be run by the
// old manager, which keeps working until its graceful shutdown ends.) Then
// it waits for the new manager to settle, sampling its memory (the start-up
// peak, returned), and samples it at rest (Finished.RestartMiB).
func (b *bench) restartManager(ctx context.Context, ns string, pods *tracker, old managerState, atLeast float64) (float64, error) {
	f := &b.results.Finished
	pod := &corev1.Pod{}
	pod.Namespace, pod.Name = scrape.ManagerNamespace, old.name
	t0 := time.Now()
	if err := b.c.Delete(ctx, pod); err != nil {
		return 0, fmt.Errorf("deleting the manager's pod %s: %w", old.name, err)
	}
	startup := b.startSampling(ctx, 2*time.Second)
	if err := b.waitPodGone(ctx, pod.Namespace, pod.Name, time.Minute); err != nil {
		_, _ = startup.finish()
		return 0, err
	}
	f.RestartOldGoneS = ptr.To(time.Since(t0).Seconds())
	obj := newAt(ns, "after-restart", t0)
	if err := b.c.Create(ctx, obj); err != nil {
		_, _ = startup.finish()
		return 0, fmt.Errorf("creating the At after the restart: %w", err)
	}
	seen, err := pods.waitSeen(ctx, string(obj.UID), restartBound)
	if err != nil {
		_, _ = startup.finish()
		return 0, fmt.Errorf("after the manager's restart: %w", err)
	}
	f.RestartFirstPodS = ptr.To(seen.Sub(t0).Seconds())
	fmt.Printf("finished: the manager's pod deleted; old one gone after %.1f s, a new At's pod after %.2f s\n",
		*f.RestartOldGoneS, *f.RestartFirstPodS)
	syncErr := b.waitSynced(ctx, atLeast, syncQuiet, managerSync)
	peak, peakErr := startup.finish()
	if syncErr != nil {
		return peak, syncErr
	}
	now, err := b.managerState(ctx)
	if err != nil {
		return peak, err
	}
	rest, err := b.sampleFor(ctx, 10, 2*time.Second)
	if err != nil {
		return peak, err
	}
	f.RestartMiB = &rest
	restarts, err := b.restartsSince(ctx, now)
	if now.restarts > 0 {
		restarts += int(now.restarts)
		err = errors.Join(err, fmt.Errorf("the new manager restarted %d times while it started (last termination: %s)", now.restarts, now.lastReason))
	}
	f.ManagerRestarts = &restarts
	return peak, errors.Join(err, peakErr)
}

// sampleFor takes n memory samples interval apart and returns their peak.
func (b *bench) sampleFor(ctx context.Context, n int, interval time.Duration) (float64, error) {
	peak := 0.0
	for i := range n {
		mib, err := b.managerMemoryMiB(ctx)
		if err != nil {
			return 0, err
		}
		peak = max(peak, mib)
		if i < n-1 {
			time.Sleep(interval)
		}
	}
	return peak, nil
}

// restoreManager scales the manager back to replicas unless it already is,
// even when the scenario was cancelled, and says how to do it by hand if
// that fails.
func (b *bench) restoreManager(ctx context.Context, name string, replicas int32) {
	ctx = context.WithoutCancel(ctx)
	dep := &appsv1.Deployment{}
	if err := b.c.Get(ctx, client.ObjectKey{Namespace: scrape.ManagerNamespace, Name: name}, dep); err == nil &&
		ptr.Deref(dep.Spec.Replicas, 1) == replicas {
		return
	}
	dep.Namespace, dep.Name = scrape.ManagerNamespace, name
	if err := b.scaleManager(ctx, dep, replicas); err != nil {
		fmt.Printf("finished: THE MANAGER IS LEFT SCALED TO 0: %v\n  restore it: kubectl --context %s -n %s scale deployment %s --replicas=%d\n",
			err, b.o.kubeContext, scrape.ManagerNamespace, name, replicas)
		return
	}
	fmt.Printf("finished: the manager scaled back to %d\n", replicas)
}

// runTemplateAt runs one At to DONE, for real, and returns it and its pod as
// they end: the templates of every fake finished At and pod.
func (b *bench) runTemplateAt(ctx context.Context, ns string, pods, ats *tracker) (*cnatv1alpha1.At, *corev1.Pod, error) {
	obj := newAt(ns, "template", time.Now().Add(2*time.Second))
	if err := b.c.Create(ctx, obj); err != nil {
		return nil, nil, fmt.Errorf("creating the template At: %w", err)
	}
	if _, err := ats.waitSeen(ctx, obj.Name, 2*time.Minute); err != nil {
		return nil, nil, fmt.Errorf("DONE of the template At: %w", err)
	}
	uid := string(obj.UID)
	if !pods.waitUntil(ctx, time.Now().Add(30*time.Second), func() bool { return pods.count(uid) > 0 }) {
		return nil, nil, errors.New("the template At's pod was not released within 30s")
	}
	if err := b.c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return nil, nil, err
	}
	if obj.Status.Result != cnatv1alpha1.ResultSucceeded {
		return nil, nil, fmt.Errorf("the template At ended %s: %s", obj.Status.Result, obj.Status.Message)
	}
	pod := &corev1.Pod{}
	if err := b.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: obj.Status.PodName}, pod); err != nil {
		return nil, nil, fmt.Errorf("the template At's pod: %w", err)
	}
	return obj, pod, nil
}

// writeFinished creates --finished-ats Ats and gives each the template's
// DONE status, then its pod (as the manager would have created it, released)
// with the template pod's final status.
func (b *bench) writeFinished(ctx context.Context, ns string, doneAt *cnatv1alpha1.At, donePod *corev1.Pod) error {
	image := donePod.Spec.Containers[0].Image
	for _, c := range donePod.Spec.Containers {
		if c.Name == at.ContainerName {
			image = c.Image
		}
	}
	var written atomic.Int64
	step := max(1000, b.o.finishedAts/10)
	start := time.Now()
	return b.parallel(ctx, b.o.finishedAts, func(i int) error {
		obj := newAt(ns, fmt.Sprintf("finished-%d", i), doneAt.Status.ScheduledTime.Time)
		if err := b.c.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating At: %w", err)
		}
		obj.Status = doneStatus(doneAt, obj)
		if err := b.c.Status().Update(ctx, obj); err != nil {
			return fmt.Errorf("writing At %s's status: %w", obj.Name, err)
		}
		pod := at.PodFor(obj, image, doneAt.Status.StartTime.Time)
		// Released, as the manager leaves a finished run's pod.
		pod.Finalizers = nil
		pod.Labels[at.ReleasedLabel] = "true"
		pod.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: neverGate}}
		if err := b.c.Create(ctx, pod); err != nil {
			return fmt.Errorf("creating At %s's pod: %w", obj.Name, err)
		}
		pod.Status = succeededStatus(donePod, pod)
		if err := b.c.Status().Update(ctx, pod); err != nil {
			return fmt.Errorf("writing pod %s's status: %w", pod.Name, err)
		}
		if n := written.Add(1); n%int64(step) == 0 {
			fmt.Printf("finished: %d of %d Ats and pods written (%s)\n", n, b.o.finishedAts, time.Since(start).Round(time.Second))
		}
		return nil
	})
}

// doneStatus is the template At's final status as obj's: its pod's name,
// its generation.
func doneStatus(template, obj *cnatv1alpha1.At) cnatv1alpha1.AtStatus {
	st := *template.Status.DeepCopy()
	podName := at.PodName(obj)
	rename := func(s string) string { return strings.ReplaceAll(s, template.Status.PodName, podName) }
	st.PodName, st.Message = podName, rename(st.Message)
	st.ObservedGeneration = obj.Generation
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.ObservedGeneration, c.Message = obj.Generation, rename(c.Message)
	}
	return st
}

// succeededStatus is the template pod's final status as pod's: the status
// the API server gave pod at its creation (its QoS class, which may not
// change) is replaced by the template's, which only the kubelet would write.
func succeededStatus(template, pod *corev1.Pod) corev1.PodStatus {
	st := *template.Status.DeepCopy()
	st.QOSClass = pod.Status.QOSClass
	st.ObservedGeneration = pod.Generation
	return st
}
