package controller

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// A template that admission takes but the API server would refuse as a pod
// (here a volume mount without its volume, which only pod validation sees)
// ends the At when it is created, an hour before its schedule, with the API
// server's message; a valid template passes the same dry run and waits.
func TestTemplateThePodValidationRefusesEndsTheAtWhenCreated(t *testing.T) {
	ns := newNamespace(t, k8sClient)
	later := time.Now().Add(time.Hour)
	bad := createAt(t, k8sClient, ns, later, func(a *cnatv1alpha1.At) {
		a.Name = "bad-template"
		a.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "command", VolumeMounts: []corev1.VolumeMount{{Name: "missing", MountPath: "/data"}},
		}}}}
	})
	good := createAt(t, k8sClient, ns, later, func(a *cnatv1alpha1.At) {
		a.Name = "good-template"
		a.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "command", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		}}
	})

	done := waitFor(t, k8sClient, bad, "DONE", inPhase(cnatv1alpha1.PhaseDone))
	if done.Status.Result != cnatv1alpha1.ResultFailed || done.Status.Reason != cnatv1alpha1.ReasonPodRejected ||
		!strings.Contains(done.Status.Message, "volumeMounts") {
		t.Errorf("status = %+v, want Failed / PodRejected with the API server's message on volumeMounts", done.Status)
	}
	waitForEvent(t, k8sClient, bad, string(cnatv1alpha1.ResultFailed))

	scheduled := waitFor(t, k8sClient, good, "PENDING", inPhase(cnatv1alpha1.PhasePending))
	if scheduled.Status.Reason != cnatv1alpha1.ReasonScheduled {
		t.Errorf("a valid template: status = %+v, want PENDING / Scheduled", scheduled.Status)
	}
	if pods := podsOf(t, k8sClient, good); len(pods) != 0 {
		t.Errorf("the dry run left pod %s behind", pods[0].Name)
	}
}
