package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/yaml"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

const managerServiceAccount = "cnat-controller-manager"

// access is one question to the authorizer: may the subject do verb on
// group/resource (resource/subresource), in namespace ("" = cluster scope)?
type access struct {
	verb, group, resource, namespace string
}

func (a access) String() string {
	res := a.resource
	if a.group != "" {
		res += "." + a.group
	}
	scope := "cluster"
	if a.namespace != "" {
		scope = "ns " + a.namespace
	}
	return fmt.Sprintf("%s %s (%s)", a.verb, res, scope)
}

// saSubject is how the API server sees a service account's requests: its
// user name and the groups every service account has.
func saSubject(namespace, name string) authorizationv1.SubjectAccessReviewSpec {
	return authorizationv1.SubjectAccessReviewSpec{
		User:   serviceAccountUser(namespace, name),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
}

func allowed(ctx context.Context, cs kubernetes.Interface, subject authorizationv1.SubjectAccessReviewSpec, a access) (bool, error) {
	resource, sub, _ := strings.Cut(a.resource, "/")
	subject.ResourceAttributes = &authorizationv1.ResourceAttributes{
		Verb: a.verb, Group: a.group, Resource: resource, Subresource: sub, Namespace: a.namespace,
	}
	ok, _, err := accessReview(ctx, cs, subject)
	if err != nil {
		return false, fmt.Errorf("%s: %w", a, err)
	}
	return ok, nil
}

// everyAccess is every verb discovery lists on every resource and
// subresource the API server serves, namespaced ones in namespace, and
// the verbs discovery does not list: escalate and bind on roles, impersonate.
func everyAccess(t *testing.T, cs kubernetes.Interface, namespace string) []access {
	t.Helper()
	// Every version of every group: ServerPreferredResources would leave out
	// the subresources (pods/exec, ats/status, ...). Versions do not matter to
	// the authorizer; the caller de-duplicates.
	_, lists, err := cs.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var all []access
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.APIResources {
			ns := ""
			if r.Namespaced {
				ns = namespace
			}
			for _, verb := range r.Verbs {
				all = append(all, access{verb, gv.Group, r.Name, ns})
			}
		}
	}
	for _, verb := range []string{"escalate", "bind"} {
		all = append(all, access{verb, rbacv1.GroupName, "clusterroles", ""}, access{verb, rbacv1.GroupName, "roles", namespace})
	}
	for _, r := range []struct{ group, resource string }{{"", "users"}, {"", "groups"}, {"", "serviceaccounts"},
		{"authentication.k8s.io", "uids"}, {"authentication.k8s.io", "userextras/scopes"}} {
		all = append(all, access{"impersonate", r.group, r.resource, ""})
	}
	return all
}

// reviewAll asks the authorizer about every access for subject, 8 at a time.
func reviewAll(ctx context.Context, t *testing.T, cs kubernetes.Interface, subject authorizationv1.SubjectAccessReviewSpec, all []access) map[access]bool {
	t.Helper()
	var mu sync.Mutex
	got := map[access]bool{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, a := range all {
		g.Go(func() error {
			ok, err := allowed(gctx, cs, subject, a)
			mu.Lock()
			got[a] = ok
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return got
}

// grantedBy says whether one of rules (as written in config/rbac: no
// wildcards) grants a.
func grantedBy(rules []rbacv1.PolicyRule, a access) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, a.group) && slices.Contains(r.Resources, a.resource) && slices.Contains(r.Verbs, a.verb) {
			return true
		}
	}
	return false
}

func rulesOf(t *testing.T, file string) []rbacv1.PolicyRule {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "config", "rbac", file))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole // a Role's rules read the same way
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return role.Rules
}

func TestManagerRBAC(t *testing.T) {
	manager := saSubject(managerNamespace, managerServiceAccount)
	f := feature("the manager's service account can do what it needs and nothing more", "security").
		Assess("what reconciling, leader election and the metrics endpoint need is allowed", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			cs, ns := clientsetOf(t, cfg), namespaceOf(ctx)
			for _, a := range []access{
				{"create", "", "pods", ns}, {"get", "", "pods", ns}, {"list", "", "pods", ns}, {"watch", "", "pods", ns},
				{"get", cnatv1alpha1.GroupVersion.Group, "ats", ns}, {"watch", cnatv1alpha1.GroupVersion.Group, "ats", ns},
				{"delete", cnatv1alpha1.GroupVersion.Group, "ats", ns}, {"update", cnatv1alpha1.GroupVersion.Group, "ats/status", ns},
				{"update", cnatv1alpha1.GroupVersion.Group, "ats/finalizers", ns}, {"create", "events.k8s.io", "events", ns},
				{"update", "coordination.k8s.io", "leases", managerNamespace},
				{"create", "authentication.k8s.io", "tokenreviews", ""}, {"create", "authorization.k8s.io", "subjectaccessreviews", ""},
			} {
				if ok, err := allowed(ctx, cs, manager, a); err != nil || !ok {
					t.Errorf("manager may not %s (err %v)", a, err)
				}
			}
			return ctx
		}).
		Assess("secrets, configmaps, exec, attach, port-forward, tokens, escalate, bind, impersonate and other namespaces' leases are denied",
			func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
				cs, ns := clientsetOf(t, cfg), namespaceOf(ctx)
				denied := []access{
					{"get", "", "secrets", ns}, {"list", "", "secrets", ns}, {"watch", "", "secrets", ns},
					{"get", "", "configmaps", ns}, {"list", "", "configmaps", ns},
					{"create", "", "pods/exec", ns}, {"create", "", "pods/attach", ns}, {"create", "", "pods/portforward", ns},
					{"update", "", "pods/ephemeralcontainers", ns}, {"create", "", "serviceaccounts/token", ns},
					{"create", cnatv1alpha1.GroupVersion.Group, "ats", ns}, {"update", cnatv1alpha1.GroupVersion.Group, "ats", ns},
					{"escalate", rbacv1.GroupName, "clusterroles", ""}, {"bind", rbacv1.GroupName, "clusterroles", ""},
					{"escalate", rbacv1.GroupName, "roles", ns}, {"bind", rbacv1.GroupName, "roles", ns},
					{"create", rbacv1.GroupName, "rolebindings", ns}, {"create", rbacv1.GroupName, "clusterrolebindings", ""},
					{"impersonate", "", "users", ""}, {"impersonate", "", "groups", ""}, {"impersonate", "", "serviceaccounts", ""},
					{"update", "coordination.k8s.io", "leases", "kube-system"},
				}
				for _, a := range denied {
					if ok, err := allowed(ctx, cs, manager, a); err != nil || ok {
						t.Errorf("manager may %s (err %v), want denied", a, err)
					}
				}
				return ctx
			}).
		Assess("every other verb on every resource is denied, cluster-scoped writes included, beyond what config/rbac grants",
			func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
				ns := namespaceOf(ctx)
				// Some 2,000 reviews: client-go's default 5 requests per second would take minutes.
				rc := rest.CopyConfig(cfg.Client().RESTConfig())
				rc.QPS, rc.Burst = 200, 200
				cs, err := kubernetes.NewForConfig(rc)
				if err != nil {
					t.Fatal(err)
				}
				// In a namespace of users, and in its own, where its leader-election Role lives.
				all := append(everyAccess(t, cs, ns), everyAccess(t, cs, managerNamespace)...)
				slices.SortFunc(all, func(a, b access) int { return strings.Compare(a.String(), b.String()) })
				all = slices.Compact(all)
				got := reviewAll(ctx, t, cs, manager, all)
				// What every service account may do (self reviews, discovery) is not the manager's doing.
				baseline := reviewAll(ctx, t, cs, saSubject(ns, "default"), all)
				clusterWide := append(rulesOf(t, "role.yaml"), rulesOf(t, "metrics_auth_role.yaml")...)
				inManagerNamespace := rulesOf(t, "leader_election_role.yaml")
				var rows []string
				for _, a := range all {
					want := baseline[a] || grantedBy(clusterWide, a) || (a.namespace == managerNamespace && grantedBy(inManagerNamespace, a))
					if got[a] != want {
						t.Errorf("manager: %s allowed=%v, want %v", a, got[a], want)
					}
					if got[a] && !baseline[a] {
						rows = append(rows, "| "+a.String()+" | allowed |")
					}
				}
				t.Logf("%d accesses reviewed; allowed to the manager beyond every service account's:\n%s", len(all), strings.Join(rows, "\n"))
				return ctx
			}).Feature()
	testenv.Test(t, f)
}

// impersonating returns klient resources acting as user.
func impersonating(t *testing.T, cfg *envconf.Config, user string) *resources.Resources {
	t.Helper()
	rc := rest.CopyConfig(cfg.Client().RESTConfig())
	rc.Impersonate = rest.ImpersonationConfig{UserName: user}
	r, err := resources.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := cnatv1alpha1.AddToScheme(r.GetScheme()); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestUserRoles(t *testing.T) {
	const editor, viewer = "e2e-editor", "e2e-viewer"
	f := feature("a namespace's edit users manage Ats, its view users read them, with no extra binding", "security").
		Setup(func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			cs, ns := clientsetOf(t, cfg), namespaceOf(ctx)
			for user, role := range map[string]string{editor: "edit", viewer: "view"} {
				rb := &rbacv1.RoleBinding{
					ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns},
					RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
					Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
				}
				if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			// The aggregation controller folds at-editor and at-viewer into
			// edit and view shortly after they are created.
			for _, user := range []string{editor, viewer} {
				waitForAccess(ctx, t, cs, authorizationv1.SubjectAccessReviewSpec{User: user,
					ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Group: cnatv1alpha1.GroupVersion.Group, Resource: "ats", Namespace: ns}})
			}
			return ctx
		}).
		Assess("a user bound to edit creates an At", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			obj := &cnatv1alpha1.At{ObjectMeta: metav1.ObjectMeta{Name: "by-editor", Namespace: namespaceOf(ctx)},
				Spec: cnatv1alpha1.AtSpec{Schedule: "2030-01-01T00:00:00Z", Command: "true"}}
			if err := impersonating(t, cfg, editor).Create(ctx, obj); err != nil {
				t.Fatalf("%s (edit) creating an At: %v", editor, err)
			}
			return context.WithValue(ctx, atKey{}, obj)
		}).
		Assess("a user bound to view reads it but cannot create one", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			r, ns := impersonating(t, cfg, viewer), namespaceOf(ctx)
			var got cnatv1alpha1.At
			if err := r.Get(ctx, "by-editor", ns, &got); err != nil {
				t.Errorf("%s (view) reading an At: %v", viewer, err)
			}
			obj := &cnatv1alpha1.At{ObjectMeta: metav1.ObjectMeta{Name: "by-viewer", Namespace: ns},
				Spec: cnatv1alpha1.AtSpec{Schedule: "2030-01-01T00:00:00Z", Command: "true"}}
			if err := r.Create(ctx, obj); !apierrors.IsForbidden(err) {
				t.Errorf("%s (view) creating an At: %v, want Forbidden", viewer, err)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
