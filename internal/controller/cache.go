package controller

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/programming-kubernetes/cnat/internal/at"
)

// CacheOptions keeps only the operator's own pods in memory, however many
// other pods the cluster runs, only the given namespaces (all if none), and
// no managedFields.
func CacheOptions(namespaces []string) cache.Options {
	opts := cache.Options{
		// Nothing here reads managedFields; dropping them saves memory per cached object.
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Label: labels.SelectorFromSet(labels.Set{at.ManagedByLabel: at.ManagedByValue})},
		},
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}
