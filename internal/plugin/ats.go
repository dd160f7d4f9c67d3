package plugin

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// AtInterface reads, creates and watches Ats: what a generated typed client
// would offer, cut down to what the plugin needs. It is a REST client rather
// than controller-runtime's, which would bring leader election, metrics and
// every API group's informers into a command-line binary.
type AtInterface interface {
	Get(ctx context.Context, namespace, name string) (*cnatv1alpha1.At, error)
	List(ctx context.Context, namespace string, opts metav1.ListOptions) (*cnatv1alpha1.AtList, error)
	Create(ctx context.Context, at *cnatv1alpha1.At, opts metav1.CreateOptions) (*cnatv1alpha1.At, error)
	Watch(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error)
}

const atResource = "ats"

type restAts struct{ rc rest.Interface }

// NewAtClient talks to the At API of the cluster cfg points at.
func NewAtClient(cfg *rest.Config) (AtInterface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.GroupVersion = &cnatv1alpha1.GroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(Scheme).WithoutConversion()
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the At client: %w", err)
	}
	return &restAts{rc: rc}, nil
}

func (c *restAts) Get(ctx context.Context, namespace, name string) (*cnatv1alpha1.At, error) {
	a := &cnatv1alpha1.At{}
	err := c.rc.Get().Namespace(namespace).Resource(atResource).Name(name).Do(ctx).Into(a)
	return a, err
}

func (c *restAts) List(ctx context.Context, namespace string, opts metav1.ListOptions) (*cnatv1alpha1.AtList, error) {
	list := &cnatv1alpha1.AtList{}
	err := c.rc.Get().Namespace(namespace).Resource(atResource).
		VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(list)
	return list, err
}

func (c *restAts) Create(ctx context.Context, at *cnatv1alpha1.At, opts metav1.CreateOptions) (*cnatv1alpha1.At, error) {
	created := &cnatv1alpha1.At{}
	err := c.rc.Post().Namespace(at.Namespace).Resource(atResource).
		VersionedParams(&opts, metav1.ParameterCodec).Body(at).Do(ctx).Into(created)
	return created, err
}

func (c *restAts) Watch(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.rc.Get().Namespace(namespace).Resource(atResource).
		VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
}
