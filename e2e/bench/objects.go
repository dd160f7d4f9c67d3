package main

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

func (b *bench) namespace(ctx context.Context, prefix string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := b.c.Create(ctx, ns); err != nil {
		return "", fmt.Errorf("creating namespace: %w", err)
	}
	return ns.Name, nil
}

// deleteNamespace deletes ns; with wait, until it is gone (so the next
// scenario starts on a quiet node), or 5 minutes have passed.
func (b *bench) deleteNamespace(ctx context.Context, name string, untilGone bool) {
	bound := time.Duration(0)
	if untilGone {
		bound = 5 * time.Minute
	}
	b.deleteNamespaceWithin(ctx, name, bound)
}

// deleteNamespaceWithin deletes ns and waits up to bound (none if zero) until
// it is gone. It runs as a scenario's clean-up, also once the scenario's
// context is cancelled (Ctrl-C): it does not take that cancellation.
func (b *bench) deleteNamespaceWithin(ctx context.Context, name string, bound time.Duration) {
	ctx = context.WithoutCancel(ctx)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := b.c.Delete(ctx, ns); err != nil {
		fmt.Printf("deleting namespace %s: %v\n", name, err)
		return
	}
	if bound == 0 {
		return
	}
	start := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, bound, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(b.c.Get(ctx, client.ObjectKeyFromObject(ns), ns)), nil
	})
	if err != nil {
		fmt.Printf("namespace %s not gone after %s; going on\n", name, bound)
		return
	}
	if took := time.Since(start); took > 30*time.Second {
		fmt.Printf("namespace %s gone in %s\n", name, took.Round(time.Second))
	}
}

// parallel runs create(0..n-1) on at most --workers goroutines and stops
// starting new ones at the first error.
func (b *bench) parallel(ctx context.Context, n int, create func(i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(b.o.workers)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return create(i) })
	}
	return g.Wait()
}

// runnerPod is the pod an At running `true` gets from the manager: the CronJob
// and direct trials run the very same pod, so that only the controller differs.
func runnerPod(image string) corev1.PodSpec {
	return at.PodFor(newAt("", "", time.Time{}), image, time.Time{}).Spec
}

// everyMinute is the single CronJob trials' schedule: the trial deletes the
// CronJob after its first pod.
const everyMinute = "* * * * *"

// cronJob runs the pod of an At running `true` on schedule, read in UTC.
func cronJob(ns, name, image, schedule string) *batchv1.CronJob {
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{trialLabel: name}}, Spec: runnerPod(image)}
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.CronJobSpec{
			Schedule:          schedule,
			TimeZone:          ptr.To("Etc/UTC"),
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate:       batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template, BackoffLimit: ptr.To[int32](0)}},
		},
	}
}

// oneShot is a cron schedule that fires at boundary (a whole minute, read in
// UTC) and then not for a year: for the burst, a CronJob that runs once, like
// an At, so that every one of its pods is the burst's.
func oneShot(boundary time.Time) string {
	u := boundary.UTC()
	return fmt.Sprintf("%d %d %d %d *", u.Minute(), u.Hour(), u.Day(), int(u.Month()))
}

func (b *bench) deleteCronJob(ctx context.Context, ns, name string) error {
	obj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if err := b.c.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting CronJob %s: %w", name, err)
	}
	return nil
}

// unschedulablePod asks for a node label no node has, so it stays Pending.
func unschedulablePod(ns, name, image string) *corev1.Pod {
	spec := runnerPod(image)
	spec.NodeSelector = map[string]string{"bench.cnat.programming-kubernetes.info/never": "true"}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec}
}

// neverGate is a scheduling gate nobody removes: the scheduler leaves a pod
// carrying it alone, so no node ever runs it.
const neverGate = "bench.cnat.programming-kubernetes.info/never"

// gatedAt is an At whose pod never runs: its template only adds neverGate
// (the pod schema requires containers; the operator adds the command's).
// The operator does not count SchedulingGated as a hold: it writes nothing
// for the wait.
func gatedAt(ns, name string, schedule time.Time) *cnatv1alpha1.At {
	obj := newAt(ns, name, schedule)
	obj.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers:      []corev1.Container{},
		SchedulingGates: []corev1.PodSchedulingGate{{Name: neverGate}},
	}}
	return obj
}

func newAt(ns, name string, schedule time.Time) *cnatv1alpha1.At {
	obj := &cnatv1alpha1.At{Spec: cnatv1alpha1.AtSpec{Schedule: schedule.UTC().Format(time.RFC3339Nano), Command: "true"}}
	obj.Name, obj.Namespace = name, ns
	return obj
}
