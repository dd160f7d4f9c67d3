package controller

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

var cacheSchedule = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fullAt is a RUNNING At with a template (a sidecar, an init container,
// volumes, env), applied with kubectl, as a user would leave it.
func fullAt() *cnatv1alpha1.At {
	obj := &cnatv1alpha1.At{
		TypeMeta: metav1.TypeMeta{APIVersion: cnatv1alpha1.GroupVersion.String(), Kind: "At"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "nightly-report", Namespace: "reports", UID: "at-uid-1", Generation: 2, ResourceVersion: "812",
			CreationTimestamp: metav1.NewTime(cacheSchedule.Add(-time.Hour)),
			Labels:            map[string]string{"team": "finance"},
			Annotations:       map[string]string{"owner": "alice"},
			ManagedFields: []metav1.ManagedFieldsEntry{{
				Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "cnat.programming-kubernetes.info/v1alpha1",
				FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:command":{},"f:schedule":{},"f:template":{}}}`),
			}},
		},
		Spec: cnatv1alpha1.AtSpec{
			Schedule: cacheSchedule.Format(time.RFC3339),
			Command:  "generate-report --month=previous --out=/reports",
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "report"}, Annotations: map[string]string{"sidecar.example.com/inject": "true"}},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "fetch", Image: "busybox:1.37", Command: []string{"sh", "-c", "wget -O /data/in http://example.com/in"}}},
					Containers: []corev1.Container{
						{Name: at.ContainerName, Image: "registry.example.com/report:1.4.2",
							Env:          []corev1.EnvVar{{Name: "DB_HOST", Value: "db.reports.svc"}, {Name: "LOG_LEVEL", Value: "info"}},
							VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "reports", MountPath: "/reports"}},
							Resources: corev1.ResourceRequirements{
								Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
								Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}},
						{Name: "log-shipper", Image: "registry.example.com/shipper:2.0",
							Args:         []string{"--follow", "/reports/log"},
							VolumeMounts: []corev1.VolumeMount{{Name: "reports", MountPath: "/reports"}}},
					},
					Volumes: []corev1.Volume{
						{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "reports", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "reports"}}},
					},
					NodeSelector: map[string]string{"disk": "ssd"},
				},
			},
			ActiveDeadlineSeconds:   ptr.To[int64](600),
			StartingDeadlineSeconds: ptr.To[int64](120),
		},
		Status: cnatv1alpha1.AtStatus{
			Phase: cnatv1alpha1.PhaseRunning, ObservedGeneration: 2, Reason: cnatv1alpha1.ReasonPodCreated,
			ScheduledTime: ptr.To(metav1.NewMicroTime(cacheSchedule)), StartTime: ptr.To(metav1.NewMicroTime(cacheSchedule)),
		},
	}
	applied, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	obj.Annotations[corev1.LastAppliedConfigAnnotation] = string(applied)
	obj.Status.PodName = at.PodName(obj)
	return obj
}

// fullPod is obj's pod as the API server returns it once it runs: defaulted
// spec, managedFields of three writers, every status the kubelet reports.
func fullPod(obj *cnatv1alpha1.At) *corev1.Pod {
	pod := at.PodFor(obj, "busybox:1.37", cacheSchedule)
	pod.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	pod.UID, pod.ResourceVersion, pod.Generation = "pod-uid-1", "815", 1
	pod.CreationTimestamp = metav1.NewTime(cacheSchedule)
	pod.Annotations["kubernetes.io/psp"] = "restricted"
	for _, manager := range []string{"manager", "kube-scheduler", "kubelet"} {
		pod.ManagedFields = append(pod.ManagedFields, metav1.ManagedFieldsEntry{
			Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &pod.CreationTimestamp,
			FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{".":{},"f:cnat.programming-kubernetes.info/at":{},` +
				`"f:cnat.programming-kubernetes.info/start-time":{}},"f:finalizers":{".":{},"v:\"cnat.programming-kubernetes.info/run\"":{}},` +
				`"f:labels":{".":{},"f:app.kubernetes.io/managed-by":{},"f:cnat.programming-kubernetes.info/at-uid":{}}},` +
				`"f:status":{"f:conditions":{"k:{\"type\":\"Ready\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},` +
				`"f:containerStatuses":{},"f:hostIP":{},"f:podIP":{},"f:startTime":{}}}`),
		})
	}
	spec := &pod.Spec
	spec.NodeName, spec.ServiceAccountName, spec.SchedulerName = "worker-7", "default", "default-scheduler"
	spec.DNSPolicy, spec.Priority = corev1.DNSClusterFirst, ptr.To[int32](0)
	spec.Tolerations = []corev1.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
		{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
	}
	for i := range spec.Containers {
		spec.Containers[i].TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	now := metav1.NewTime(cacheSchedule.Add(2 * time.Second))
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBurstable, StartTime: &now,
		HostIP: "10.0.3.7", HostIPs: []corev1.HostIP{{IP: "10.0.3.7"}},
		PodIP: "10.244.7.31", PodIPs: []corev1.PodIP{{IP: "10.244.7.31"}, {IP: "fd00:10:244:7::1f"}},
		Conditions: []corev1.PodCondition{
			{Type: "PodReadyToStartContainers", Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(cacheSchedule)},
		},
		InitContainerStatuses: []corev1.ContainerStatus{{
			Name: "fetch", Image: "docker.io/library/busybox:1.37", ImageID: "docker.io/library/busybox@sha256:" + strings.Repeat("ab", 32),
			ContainerID: "containerd://" + strings.Repeat("01", 32), Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now,
				ContainerID: "containerd://" + strings.Repeat("01", 32)}},
		}},
		ContainerStatuses: []corev1.ContainerStatus{
			runningStatus(at.ContainerName, "registry.example.com/report:1.4.2", now),
			runningStatus("log-shipper", "registry.example.com/shipper:2.0", now),
		},
	}
	return pod
}

func runningStatus(name, image string, started metav1.Time) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Name: name, Image: image, ImageID: image + "@sha256:" + strings.Repeat("cd", 32),
		ContainerID: "containerd://" + strings.Repeat("ef", 32), Ready: true, Started: ptr.To(true), RestartCount: 0,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
		VolumeMounts: []corev1.VolumeMountStatus{{Name: "reports", MountPath: "/reports"},
			{Name: "kube-api-access-x7k2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
		AllocatedResources: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
		User:               &corev1.ContainerUser{Linux: &corev1.LinuxContainerUser{UID: 65532, GID: 65532, SupplementalGroups: []int64{65532}}},
	}
}

// setCommand sets the state of the command's container.
func setCommand(pod *corev1.Pod, state corev1.ContainerState) {
	pod.Status.ContainerStatuses[0].State = state
}

func trimmedPod(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := trimPod(pod.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	return out.(*corev1.Pod)
}

// The cached pod must lead every reader to what the pod from the API server
// leads it to: Decide, and the predicate, handler and index that read pods.
func TestTrimmedPodDecidesAsTheFullPod(t *testing.T) {
	now := cacheSchedule.Add(30 * time.Second)
	terminated := func(code int32, reason string) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason,
			Message: "report failed:\n" + strings.Repeat("stack frame\n", 200), StartedAt: metav1.NewTime(cacheSchedule), FinishedAt: metav1.NewTime(now)}}
	}
	waiting := func(reason, message string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
	}
	for _, tc := range []struct {
		name   string
		change func(obj *cnatv1alpha1.At, pod *corev1.Pod, now *time.Time)
		want   at.ActionType
	}{
		{"running", func(*cnatv1alpha1.At, *corev1.Pod, *time.Time) {}, at.Wait},
		{"pending, unschedulable", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			pod.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled,
				Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available: 3 Insufficient memory."}}}
		}, at.WriteStatus},
		{"pending, creating its containers", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			pod.Status.Phase = corev1.PodPending
			setCommand(pod, waiting("ContainerCreating", ""))
		}, at.Wait},
		{"ErrImagePull", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			pod.Status.Phase = corev1.PodPending
			setCommand(pod, waiting("ErrImagePull", `failed to pull image "registry.example.com/report:1.4.2": not found`))
		}, at.WriteStatus},
		{"the sidecar in ImagePullBackOff", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			pod.Status.ContainerStatuses[1].State = waiting("ImagePullBackOff", "Back-off pulling image")
		}, at.WriteStatus},
		{"the init container's config missing", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			pod.Status.Phase = corev1.PodPending
			pod.Status.InitContainerStatuses[0].State = waiting("CreateContainerConfigError", `secret "db" not found`)
			setCommand(pod, waiting("PodInitializing", ""))
		}, at.WriteStatus},
		{"running again after a hold", func(obj *cnatv1alpha1.At, _ *corev1.Pod, now *time.Time) {
			obj.Status.Conditions = []metav1.Condition{{Type: cnatv1alpha1.ConditionHeld, Status: metav1.ConditionTrue,
				Reason: "ErrImagePull", LastTransitionTime: metav1.NewTime(*now)}}
		}, at.WriteStatus},
		{"seen before RUNNING was recorded", func(obj *cnatv1alpha1.At, _ *corev1.Pod, _ *time.Time) {
			obj.Status = cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhasePending, ObservedGeneration: 2}
		}, at.WriteStatus},
		{"seen before RUNNING, without the start-time annotation", func(obj *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			obj.Status = cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhasePending, ObservedGeneration: 2}
			delete(pod.Annotations, at.StartTimeAnnotation)
		}, at.WriteStatus},
		{"succeeded", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			pod.Status.Phase = corev1.PodSucceeded
			setCommand(pod, terminated(0, "Completed"))
		}, at.WriteStatus},
		{"failed with an exit code", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			pod.Status.Phase = corev1.PodFailed
			setCommand(pod, terminated(3, "Error"))
		}, at.WriteStatus},
		{"OOMKilled", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			pod.Status.Phase = corev1.PodFailed
			setCommand(pod, terminated(137, "OOMKilled"))
		}, at.WriteStatus},
		{"evicted", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			pod.Status.Phase, pod.Status.Reason, pod.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
			setCommand(pod, terminated(137, "ContainerStatusUnknown"))
		}, at.WriteStatus},
		{"past activeDeadlineSeconds", func(_ *cnatv1alpha1.At, _ *corev1.Pod, now *time.Time) {
			*now = cacheSchedule.Add(11 * time.Minute)
		}, at.DeletePod},
		{"past startingDeadlineSeconds, not started, deleted", func(_ *cnatv1alpha1.At, pod *corev1.Pod, now *time.Time) {
			*now = cacheSchedule.Add(3 * time.Minute)
			pod.Status.Phase, pod.DeletionTimestamp = corev1.PodPending, ptr.To(metav1.NewTime(*now))
			setCommand(pod, waiting("ErrImagePull", "not found"))
		}, at.WriteStatus},
		{"deleting, held by the finalizer", func(_ *cnatv1alpha1.At, pod *corev1.Pod, now *time.Time) {
			pod.DeletionTimestamp, pod.DeletionGracePeriodSeconds = ptr.To(metav1.NewTime(*now)), ptr.To[int64](5)
		}, at.WriteStatus},
		{"DONE, the pod still held", func(obj *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			obj.Status.Phase, obj.Status.Result = cnatv1alpha1.PhaseDone, cnatv1alpha1.ResultSucceeded
			pod.Status.Phase = corev1.PodSucceeded
			setCommand(pod, terminated(0, "Completed"))
		}, at.ReleasePod},
		{"DONE, the pod released", func(obj *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			obj.Status.Phase, obj.Status.Result = cnatv1alpha1.PhaseDone, cnatv1alpha1.ResultSucceeded
			pod.Finalizers = nil
		}, at.Wait},
		{"the At being deleted", func(obj *cnatv1alpha1.At, _ *corev1.Pod, now *time.Time) {
			obj.DeletionTimestamp = ptr.To(metav1.NewTime(*now))
		}, at.ReleasePod},
		{"relabelled", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			delete(pod.Labels, at.AtUIDLabel)
		}, at.RelabelPod},
		{"another At's pod", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			pod.OwnerReferences[0].UID = "another-at"
		}, at.WriteStatus},
		{"owned by something else too", func(_ *cnatv1alpha1.At, pod *corev1.Pod, _ *time.Time) {
			pod.OwnerReferences = append([]metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "report-config", UID: "cm"}},
				pod.OwnerReferences...)
		}, at.Wait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj, now := fullAt(), now
			pod := fullPod(obj)
			tc.change(obj, pod, &now)
			trimmed := trimmedPod(t, pod)

			full := at.Decide(at.Input{At: obj.DeepCopy(), Pod: pod, Now: now, DefaultImage: "img"})
			got := at.Decide(at.Input{At: obj.DeepCopy(), Pod: trimmed, Now: now, DefaultImage: "img"})
			if full.Type != tc.want {
				t.Fatalf("the full pod decides %s, want %s: the case does not test what it says", full.Type, tc.want)
			}
			if (full.Pod == nil) != (got.Pod == nil) || full.Pod != nil && full.Pod.UID != got.Pod.UID {
				t.Errorf("action's pod: %v from the full pod, %v from the trimmed one", full.Pod, got.Pod)
			}
			full.Pod, got.Pod = nil, nil
			if !reflect.DeepEqual(full, got) {
				t.Errorf("the trimmed pod decides differently:\nfull:    %+v %+v\ntrimmed: %+v %+v", full, full.Status, got, got.Status)
			}
			if at.PodEnded(pod) != at.PodEnded(trimmed) || !reflect.DeepEqual(ownerAtName(pod), ownerAtName(trimmed)) ||
				!reflect.DeepEqual(metav1.GetControllerOf(pod), metav1.GetControllerOf(trimmed)) || holdChanged(pod, trimmed) {
				t.Errorf("the trimmed pod reads differently to the watch: ended %v/%v, index %v/%v, controller %v/%v",
					at.PodEnded(pod), at.PodEnded(trimmed), ownerAtName(pod), ownerAtName(trimmed),
					metav1.GetControllerOf(pod), metav1.GetControllerOf(trimmed))
			}
			if again := trimmedPod(t, trimmed); !reflect.DeepEqual(again, trimmed) {
				t.Errorf("trimming twice differs from trimming once:\n%+v\n%+v", again, trimmed)
			}
		})
	}
}

// What the cache no longer holds, and how much smaller the pod is: the
// informational figure behind the memory budget (no assertion on it).
func TestTrimmedPodDropsWhatNothingReads(t *testing.T) {
	pod := fullPod(fullAt())
	pod.Status.Phase = corev1.PodSucceeded
	setCommand(pod, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed",
		Message: strings.Repeat("report line\n", 100)}})
	trimmed := trimmedPod(t, pod)
	before, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	after, err := json.Marshal(trimmed)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a succeeded run pod: %d bytes of JSON from the API server, %d cached (%.0f%% less)",
		len(before), len(after), 100-100*float64(len(after))/float64(len(before)))
	for _, dropped := range []string{`"managedFields"`, "registry.example.com", "busybox", `"env"`, `"volumes"`, `"nodeName"`,
		`"podIP"`, `"hostIP"`, "report line", "kubernetes.io/psp", `"` + at.AtNameAnnotation + `"`, `"app"`, "ConfigMap", `"generation"`} {
		if strings.Contains(string(after), dropped) {
			t.Errorf("the cached pod still holds %q: %s", dropped, after)
		}
	}
	if !reflect.DeepEqual(trimmed.Spec, corev1.PodSpec{}) {
		t.Errorf("the cached pod keeps a spec: %+v", trimmed.Spec)
	}
}

func TestTrimmedAtKeepsAllButKubectlsCopy(t *testing.T) {
	obj := fullAt()
	out, err := trimAt(obj.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	trimmed := out.(*cnatv1alpha1.At)
	want := obj.DeepCopy()
	want.ManagedFields = nil
	delete(want.Annotations, corev1.LastAppliedConfigAnnotation)
	if !reflect.DeepEqual(trimmed, want) {
		t.Errorf("trimmed At:\n%+v\nwant the At without managedFields and %s:\n%+v", trimmed, corev1.LastAppliedConfigAnnotation, want)
	}
	before, _ := json.Marshal(obj)
	after, _ := json.Marshal(trimmed)
	t.Logf("an At with a template applied by kubectl: %d bytes of JSON, %d cached", len(before), len(after))

	again, err := trimAt(trimmed.DeepCopy())
	if err != nil || !reflect.DeepEqual(again, trimmed) {
		t.Errorf("trimming twice: %v, %+v; want the once-trimmed At", err, again)
	}
	applied := &cnatv1alpha1.At{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "{}"}}}
	if out, _ := trimAt(applied); out.(*cnatv1alpha1.At).Annotations != nil {
		t.Errorf("annotations %v left empty, want nil", out.(*cnatv1alpha1.At).Annotations)
	}
}

// Tombstones and other types are not the transforms' to change.
func TestTransformsPassOtherObjectsThrough(t *testing.T) {
	tombstone := toolscache.DeletedFinalStateUnknown{Key: "ns/pod", Obj: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod", UID: types.UID("u")}}}
	for _, transform := range []toolscache.TransformFunc{trimPod, trimAt} {
		for _, in := range []any{tombstone, &corev1.ConfigMap{}, nil} {
			out, err := transform(in)
			if err != nil || !reflect.DeepEqual(out, in) {
				t.Errorf("%T: %v, %v; want it unchanged", in, out, err)
			}
		}
	}
	if out, _ := trimPod(fullAt()); !reflect.DeepEqual(out, fullAt()) {
		t.Error("trimPod changed an At")
	}
}

// A released pod leaves the cache; a pod still held is cached, another
// operator's is not.
func TestReleasedPodsLeaveTheCache(t *testing.T) {
	selector := runPods()
	for _, tc := range []struct {
		name   string
		labels map[string]string
		cached bool
	}{
		{"run pod", map[string]string{at.ManagedByLabel: at.ManagedByValue, at.AtUIDLabel: "u1"}, true},
		{"released run pod", map[string]string{at.ManagedByLabel: at.ManagedByValue, at.AtUIDLabel: "u1", at.ReleasedLabel: "true"}, false},
		{"someone else's pod", map[string]string{at.ManagedByLabel: "helm"}, false},
	} {
		if got := selector.Matches(labels.Set(tc.labels)); got != tc.cached {
			t.Errorf("%s: cached %v, want %v", tc.name, got, tc.cached)
		}
	}
}
