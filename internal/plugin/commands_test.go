package plugin

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/utils/ptr"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
	"github.com/programming-kubernetes/cnat/internal/at"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func atIn(name string, st cnatv1alpha1.AtStatus) *cnatv1alpha1.At {
	return &cnatv1alpha1.At{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, UID: types.UID("uid-" + name)},
		Spec:       cnatv1alpha1.AtSpec{Schedule: "2026-11-29T21:00:00Z", Command: "echo hi"},
		Status:     st,
	}
}

func doneAt(name string, r cnatv1alpha1.Result, code *int32, reason string) *cnatv1alpha1.At {
	return atIn(name, cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhaseDone, Result: r, ExitCode: code, Reason: reason,
		PodName: name + "-pod", CompletionTime: ptr.To(metav1.NewMicroTime(testNow.Add(-time.Minute)))})
}

func expect(t *testing.T, e *env, code, want int, stdout, stderr string) {
	t.Helper()
	if code != want {
		t.Errorf("exit code %d, want %d; stdout %q, stderr %q", code, want, e.out.String(), e.errOut.String())
	}
	if !strings.Contains(e.out.String(), stdout) {
		t.Errorf("stdout %q lacks %q", e.out.String(), stdout)
	}
	if !strings.Contains(e.errOut.String(), stderr) {
		t.Errorf("stderr %q lacks %q", e.errOut.String(), stderr)
	}
}

func TestCreateDryRunClientYAML(t *testing.T) {
	e := newEnv(t)
	code := e.run(ctx(t), "create", "migrate", "--in", "5m", "--image", "app:v42", "--starting-deadline", "30s",
		"--active-deadline", "10m", "--ttl", "1h", "-l", "team=data", "--dry-run=client", "-o", "yaml",
		"--", "./migrate", "--to", "v42 beta")
	expect(t, e, code, 0, "", "")
	golden(t, "create-dry-run.yaml", e.out.String())
	if e.ats.creates != 0 {
		t.Errorf("a client dry run sent %d creates", e.ats.creates)
	}
}

func TestCreate(t *testing.T) {
	e := newEnv(t)
	code := e.run(ctx(t), "create", "hello", "--at", "2026-12-01T09:00:00+01:00", "--", "echo hi; exit 3")
	expect(t, e, code, 0, "at/hello created, runs at 2026-12-01T09:00:00+01:00 (in 34h)\n", "")
	got, err := e.ats.Get(ctx(t), "team", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Schedule != "2026-12-01T09:00:00+01:00" || got.Spec.Command != "echo hi; exit 3" ||
		got.Spec.StartingDeadlineSeconds != nil || got.Spec.TTLSecondsAfterFinished != nil {
		t.Errorf("created spec %+v", got.Spec)
	}
}

func TestCreateDryRunClientSendsNothing(t *testing.T) {
	e := newEnv(t)
	expect(t, e, e.run(ctx(t), "create", "hello", "--in", "90s", "--dry-run=client", "--", "echo"), 0,
		"at/hello created (client dry run), runs at 2026-11-29T21:11:30Z (in 90s)\n", "")
	if e.ats.creates != 0 {
		t.Errorf("%d creates", e.ats.creates)
	}
}

func TestCreateOutputName(t *testing.T) {
	e := newEnv(t)
	expect(t, e, e.run(ctx(t), "create", "hello", "--in", "0s", "-o", "name", "--", "echo", "hi"), 0,
		"at.cnat.programming-kubernetes.info/hello\n", "")
	expect(t, e, e.run(ctx(t), "create", "hello2", "--in", "0s", "--dry-run=server", "-o", "name", "--", "echo"), 0,
		"at.cnat.programming-kubernetes.info/hello2\n", "")
}

func TestCreateErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		err  string
	}{
		{"past", []string{"create", "x", "--at", "2026-11-29T20:00:00Z", "--", "echo"}, "is 70m ago; to run the command now, say --in 0s"},
		{"no dash", []string{"create", "x", "--in", "1m", "echo", "hi"}, "put the command after --"},
		{"no command", []string{"create", "x", "--in", "1m"}, "no command"},
		{"no time", []string{"create", "x", "--", "echo"}, "say when"},
		{"both", []string{"create", "x", "--in", "1m", "--at", "09:00", "--", "echo"}, "[at in] were all set"},
		{"bad name", []string{"create", "Bad_Name", "--in", "1m", "--", "echo"}, `"Bad_Name" is not a valid At name`},
		{"fractional deadline", []string{"create", "x", "--in", "1m", "--starting-deadline", "1.5s", "--", "echo"}, "give whole seconds"},
		{"zero deadline", []string{"create", "x", "--in", "1m", "--active-deadline", "0s", "--", "echo"}, "at least 1s"},
		{"negative ttl", []string{"create", "x", "--in", "1m", "--ttl", "-1s", "--", "echo"}, "at least 0s"},
		{"bad dry run", []string{"create", "x", "--in", "1m", "--dry-run=maybe", "--", "echo"}, `--dry-run must be "none", "client" or "server"`},
		{"bad output", []string{"create", "x", "--in", "1m", "-o", "toml", "--", "echo"}, `output format "toml"`},
		{"unknown flag", []string{"create", "x", "--bogus"}, "unknown flag: --bogus\nSee 'kubectl at create --help' for usage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			expect(t, e, e.run(ctx(t), c.args...), 1, "", c.err)
			if e.ats.creates != 0 {
				t.Errorf("%d creates despite the error", e.ats.creates)
			}
		})
	}
}

func TestCRDNotInstalled(t *testing.T) {
	for _, args := range [][]string{
		{"create", "x", "--in", "1m", "--", "echo"},
		{"list"},
		{"get", "x"},
	} {
		e := newEnv(t)
		e.uninstall()
		expect(t, e, e.run(ctx(t), args...), 1, "", "is cnat installed? Install it with: kubectl apply --server-side -f")
	}
	e := newEnv(t)
	e.uninstall()
	expect(t, e, e.run(ctx(t), "wait", "x"), ExitWaitError, "", "is cnat installed?")
}

func TestGetAndList(t *testing.T) {
	objs := sampleAts()
	e := newEnv(t)
	for i := range objs {
		if err := e.ats.tracker.Add(&objs[i]); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, e, e.run(ctx(t), "list"), 0, "", "")
	golden(t, "list.golden", e.out.String())
	expect(t, e, e.run(ctx(t), "list", "-A", "-o", "name"), 0, "at.cnat.programming-kubernetes.info/late\n", "")
	expect(t, e, e.run(ctx(t), "get", "at/hello"), 0, "", "")
	golden(t, "get.golden", e.out.String())
	expect(t, e, e.run(ctx(t), "get", "hello", "-o", "jsonpath={.status.result}"), 0, "Succeeded", "")
	expect(t, e, e.run(ctx(t), "get", "hello", "-o", "yaml"), 0, "apiVersion: cnat.programming-kubernetes.info/v1alpha1\nkind: At\n", "")
	expect(t, e, e.run(ctx(t), "get", "hello", "report", "-o", "json"), 0, `"kind": "AtList"`, "")
	expect(t, e, e.run(ctx(t), "get", "nope"), 1, "", `error: at "nope" not found in namespace "team"`)
	expect(t, e, e.run(ctx(t), "get", "pod/hello"), 1, "", `"pod/hello" is not an At`)
	expect(t, e, e.run(ctx(t), "list", "-n", "empty"), 0, "", "No Ats found in namespace empty.")
}

func TestRerun(t *testing.T) {
	orig := doneAt("migrate", cnatv1alpha1.ResultFailed, ptr.To[int32](3), cnatv1alpha1.ReasonPodFailed)
	orig.Labels = map[string]string{"team": "data"}
	orig.Spec.Image = "app:v42"
	orig.Spec.StartingDeadlineSeconds = ptr.To[int64](30)
	e := newEnv(t, orig)

	expect(t, e, e.run(ctx(t), "rerun", "migrate"), 0,
		"at/migrate-x7k2p created as a rerun of at/migrate, runs at 2026-11-29T21:10:00Z (now)\n", "")
	rerun, err := e.ats.Get(ctx(t), "team", "migrate-x7k2p")
	if err != nil {
		t.Fatal(err)
	}
	want := orig.Spec.DeepCopy()
	want.Schedule = "2026-11-29T21:10:00Z"
	if !reflect.DeepEqual(rerun.Spec, *want) {
		t.Errorf("rerun spec %+v, want %+v", rerun.Spec, *want)
	}
	if rerun.Labels["team"] != "data" || rerun.Annotations[RerunOfAnnotation] != "migrate" || rerun.Status.Phase != "" {
		t.Errorf("rerun metadata %+v, status %+v", rerun.ObjectMeta, rerun.Status)
	}

	// A rerun of the rerun is named after the first At, and can be later.
	expect(t, e, e.run(ctx(t), "rerun", "migrate-x7k2p", "--name", "migrate-again", "--in", "1h", "-o", "name"), 0,
		"at.cnat.programming-kubernetes.info/migrate-again\n", "")
	again, err := e.ats.Get(ctx(t), "team", "migrate-again")
	if err != nil {
		t.Fatal(err)
	}
	if again.Annotations[RerunOfAnnotation] != "migrate" || again.Spec.Schedule != "2026-11-29T22:10:00Z" {
		t.Errorf("second rerun %+v %+v", again.Annotations, again.Spec)
	}
	expect(t, e, e.run(ctx(t), "rerun", "nope"), 1, "", `at "nope" not found`)
}

func TestRerunNameFitsAGeneratedName(t *testing.T) {
	long := strings.Repeat("a", 200)
	a := Rerun(&cnatv1alpha1.At{ObjectMeta: metav1.ObjectMeta{Name: long}}, testNow, "", func() string { return "x7k2p" })
	if len(a.Name) != 63 || !strings.HasSuffix(a.Name, "-x7k2p") || a.Annotations[RerunOfAnnotation] != long {
		t.Errorf("name %q (%d), annotation %q", a.Name, len(a.Name), a.Annotations[RerunOfAnnotation])
	}
}

func TestWaitWhenAlreadyDone(t *testing.T) {
	for _, c := range []struct {
		at   *cnatv1alpha1.At
		code int
		out  string
	}{
		{doneAt("ok", cnatv1alpha1.ResultSucceeded, ptr.To[int32](0), "Succeeded"), 0, "at/ok: Succeeded, exit code 0\n"},
		{doneAt("three", cnatv1alpha1.ResultFailed, ptr.To[int32](3), "PodFailed"), 3, "at/three: Failed, exit code 3 (PodFailed)\n"},
		{doneAt("gone", cnatv1alpha1.ResultFailed, nil, "PodDeleted"), ExitFailedWithoutCode, "at/gone: Failed (PodDeleted)\n"},
		{doneAt("late", cnatv1alpha1.ResultMissed, nil, "MissedStartingDeadline"), ExitMissed, "at/late: Missed (MissedStartingDeadline)\n"},
	} {
		e := newEnv(t, c.at)
		expect(t, e, e.run(ctx(t), "wait", c.at.Name), c.code, c.out, "")
		if e.errOut.Len() != 0 {
			t.Errorf("stderr %q: an At's result is not an error of wait's", e.errOut.String())
		}
	}
}

func TestWaitWatchesUntilDone(t *testing.T) {
	e := newEnv(t, atIn("job", cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhasePending}))
	done := make(chan int)
	go func() { done <- e.run(ctx(t), "wait", "at/job") }()
	<-e.ats.watches // wait is watching
	running := atIn("job", cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhaseRunning})
	if err := e.ats.tracker.Update(atsGVR, running, "team"); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		t.Fatalf("wait returned %d on RUNNING", code)
	case <-time.After(100 * time.Millisecond):
	}
	failed := doneAt("job", cnatv1alpha1.ResultFailed, ptr.To[int32](7), cnatv1alpha1.ReasonPodFailed)
	if err := e.ats.tracker.Update(atsGVR, failed, "team"); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		expect(t, e, code, 7, "at/job: Failed, exit code 7 (PodFailed)\n", "")
	case <-ctx(t).Done():
		t.Fatal("wait did not return after the At was DONE")
	}
}

func TestWaitErrors(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		e := newEnv(t, atIn("slow", cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhasePending}))
		expect(t, e, e.run(ctx(t), "wait", "slow", "--timeout", "300ms"), ExitTimeout, "",
			"error: timed out after 300ms waiting for at/slow to be DONE; it is PENDING")
	})
	t.Run("deleted while waiting", func(t *testing.T) {
		e := newEnv(t, atIn("doomed", cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhaseRunning}))
		done := make(chan int)
		go func() { done <- e.run(ctx(t), "wait", "doomed") }()
		<-e.ats.watches
		if err := e.ats.tracker.Delete(atsGVR, "team", "doomed"); err != nil {
			t.Fatal(err)
		}
		expect(t, e, <-done, ExitWaitError, "", `at "doomed" was deleted while waiting for it`)
	})
	t.Run("not found", func(t *testing.T) {
		e := newEnv(t)
		expect(t, e, e.run(ctx(t), "wait", "nope"), ExitWaitError, "", `at "nope" not found in namespace "team"`)
	})
	t.Run("bad flag", func(t *testing.T) {
		e := newEnv(t)
		expect(t, e, e.run(ctx(t), "wait", "x", "--timeout", "soon"), ExitWaitError, "", "invalid argument")
	})
	t.Run("no name", func(t *testing.T) {
		e := newEnv(t)
		expect(t, e, e.run(ctx(t), "wait"), ExitWaitError, "", "accepts 1 arg(s)")
	})
}

// runningPod is the pod the operator would have made for owner.
func runningPod(owner *cnatv1alpha1.At, name string, started bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name,
		Labels:          map[string]string{at.AtUIDLabel: string(owner.UID)},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, cnatv1alpha1.GroupVersion.WithKind("At"))}}}
	if started {
		p.Status.Phase = corev1.PodRunning
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: at.ContainerName,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	}
	return p
}

func TestLogs(t *testing.T) {
	// The fake clientset answers every log request with "fake logs".
	t.Run("a finished run", func(t *testing.T) {
		hello := doneAt("hello", cnatv1alpha1.ResultSucceeded, ptr.To[int32](0), "Succeeded")
		e := newEnv(t, hello, runningPod(hello, "hello-pod", false))
		expect(t, e, e.run(ctx(t), "logs", "hello"), 0, "fake logs", "")
	})
	t.Run("pod gone", func(t *testing.T) {
		e := newEnv(t, doneAt("hello", cnatv1alpha1.ResultSucceeded, ptr.To[int32](0), "Succeeded"))
		clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, false)
		expect(t, e, e.run(ctx(t), "logs", "-f", "hello"), 1, "",
			"the pod hello-pod of at/hello no longer exists (deleted, or with the At's TTL): its output is gone")
	})
	t.Run("missed", func(t *testing.T) {
		late := doneAt("late", cnatv1alpha1.ResultMissed, nil, "MissedStartingDeadline")
		late.Status.PodName = ""
		e := newEnv(t, late)
		expect(t, e, e.run(ctx(t), "logs", "late"), 1, "", "at/late ended Missed without a pod (MissedStartingDeadline): there is no output")
	})
	t.Run("not yet", func(t *testing.T) {
		e := newEnv(t, atIn("later", cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhasePending}))
		expect(t, e, e.run(ctx(t), "logs", "later"), 1, "", "at/later has not run yet (due 10m ago); use -f to wait for its output")
	})
	t.Run("pod created, RUNNING not yet recorded", func(t *testing.T) {
		starting := atIn("starting", cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhasePending})
		e := newEnv(t, starting, runningPod(starting, "starting-abc", true))
		// podOf finds the pod by the At's UID label before status.podName is written.
		expect(t, e, e.run(ctx(t), "logs", "starting"), 0, "fake logs", "")
	})
	t.Run("follow waits for the pod", func(t *testing.T) {
		clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, false)
		soon := atIn("soon", cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhasePending})
		e := newEnv(t, soon)
		done := make(chan int)
		go func() { done <- e.run(ctx(t), "logs", "-f", "soon") }()
		<-e.ats.watches
		if _, err := e.core.CoreV1().Pods("team").Create(ctx(t), runningPod(soon, "soon-pod", true), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		running := atIn("soon", cnatv1alpha1.AtStatus{Phase: cnatv1alpha1.PhaseRunning, PodName: "soon-pod"})
		if err := e.ats.tracker.Update(atsGVR, running, "team"); err != nil {
			t.Fatal(err)
		}
		expect(t, e, <-done, 0, "fake logs", "")
	})
}

func TestCompletionOffersAtNames(t *testing.T) {
	e := newEnv(t, atIn("alpha", cnatv1alpha1.AtStatus{}), atIn("beta", cnatv1alpha1.AtStatus{}))
	expect(t, e, e.run(ctx(t), "__complete", "wait", ""), 0, "alpha\nbeta\n:4\n", "")
}
