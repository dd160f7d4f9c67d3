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
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := b.c.Delete(ctx, ns); err != nil {
		fmt.Printf("deleting namespace %s: %v\n", name, err)
		return
	}
	if !untilGone {
		return
	}
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(b.c.Get(ctx, client.ObjectKeyFromObject(ns), ns)), nil
	})
	if err != nil {
		fmt.Printf("namespace %s not gone after 5 minutes; going on\n", name)
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

// cronJob fires every minute; the trial deletes it after its first pod.
func cronJob(ns, name, image string) *batchv1.CronJob {
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{trialLabel: name}}, Spec: runnerPod(image)}
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.CronJobSpec{
			Schedule:          "* * * * *",
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate:       batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template, BackoffLimit: ptr.To[int32](0)}},
		},
	}
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

func newAt(ns, name string, schedule time.Time) *cnatv1alpha1.At {
	obj := &cnatv1alpha1.At{Spec: cnatv1alpha1.AtSpec{Schedule: schedule.UTC().Format(time.RFC3339Nano), Command: "true"}}
	obj.Name, obj.Namespace = name, ns
	return obj
}
