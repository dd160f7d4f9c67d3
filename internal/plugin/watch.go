package plugin

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// oneObject lists and watches the single object called name, through a field
// selector so that the server sends nothing else.
func oneObject[L runtime.Object](name string,
	list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.ListerWatcher {
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			l, err := list(ctx, opts)
			if err != nil {
				return nil, err // not a typed nil in an interface
			}
			return l, nil
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return watchFn(ctx, opts)
		},
	}
}

// atWatch and podWatch are oneObject for the session's namespace.
func (s *session) atWatch(name string) cache.ListerWatcher {
	return oneObject(name,
		func(ctx context.Context, o metav1.ListOptions) (*cnatv1alpha1.AtList, error) {
			return s.Ats.List(ctx, s.namespace, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return s.Ats.Watch(ctx, s.namespace, o)
		})
}

func (s *session) podWatch(name string) cache.ListerWatcher {
	pods := s.Core.Pods(s.namespace)
	return oneObject(name, pods.List, pods.Watch)
}

// until blocks until cond holds for the object namespace/name that lw lists
// and watches, and returns it. It uses client-go's UntilWithSync: an informer
// that re-lists and re-watches through API timeouts, dropped connections and
// "resource version too old", so a wait of hours needs no polling and misses
// no change. It fails when the object does not exist or is deleted, and with
// ctx's error when ctx ends first.
// object is a Kubernetes object with metadata: an At or a Pod.
type object interface {
	metav1.Object
	runtime.Object
}

func until[T object](ctx context.Context, lw cache.ListerWatcher, objType T, kind, namespace, name string,
	cond func(T) bool) (T, error) {
	var last T
	check := func(obj any) bool {
		o, ok := obj.(T)
		if !ok || o.GetName() != name || o.GetNamespace() != namespace {
			return false // a fake or an old server may ignore the field selector
		}
		last = o
		return cond(o)
	}
	precondition := func(store cache.Store) (bool, error) {
		obj, exists, err := store.GetByKey(namespace + "/" + name)
		if err != nil {
			return false, err
		}
		if !exists {
			// The caller read it just before: it was deleted meanwhile.
			return false, &goneError{kind: kind, name: name}
		}
		return check(obj), nil
	}
	_, err := watchtools.UntilWithSync(ctx, lw, objType, precondition, func(e watch.Event) (bool, error) {
		switch e.Type {
		case watch.Deleted:
			// The object may come as a tombstone when the informer missed the delete.
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(e.Object); err == nil && key == namespace+"/"+name {
				return false, &goneError{kind: kind, name: name}
			}
			return false, nil
		case watch.Added, watch.Modified:
			return check(e.Object), nil
		default:
			return false, nil
		}
	})
	if err != nil && ctx.Err() != nil {
		return last, ctx.Err() // the caller tells a timeout from an interrupt
	}
	return last, err
}

// goneError: the object waited for was deleted.
type goneError struct{ kind, name string }

func (e *goneError) Error() string {
	return fmt.Sprintf("%s %q was deleted while waiting for it", e.kind, e.name)
}
