// Package scrape reads the manager's /metrics as a scraper does: over HTTPS
// with a service account's bearer token. It connects through a port-forward
// to the manager's pod because the API server's service proxy cannot carry
// the caller's token (the API server drops the Authorization header once it
// has authenticated the request), and the manager answers 401 to a request
// without one.
package scrape

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/utils/ptr"
)

// The manager as config/default deploys it.
const (
	ManagerNamespace = "cnat-system"
	ManagerSelector  = "control-plane=controller-manager"
	MetricsPort      = 8443
	// MetricsReader is config/rbac/metrics_reader_role.yaml after config/default's name prefix.
	MetricsReader = "cnat-metrics-reader"
)

// Get sends GET /metrics to port of a Ready pod in namespace matching
// selector, with token as bearer token unless it is empty, and returns the
// status code and body.
func Get(ctx context.Context, cfg *rest.Config, namespace, selector string, port int, token string) (int, []byte, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0, nil, err
	}
	pod, err := readyPod(ctx, cs, namespace, selector)
	if err != nil {
		return 0, nil, err
	}
	local, stop, err := forward(cfg, cs, namespace, pod, port)
	if err != nil {
		return 0, nil, fmt.Errorf("port-forward to %s/%s:%d: %w", namespace, pod, port, err)
	}
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/metrics", local), nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// The manager's certificate is self-signed (config/default mounts none);
	// what this client proves is authentication and authorization, not the
	// server's identity, which the port-forward already pins to the pod.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
	}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("GET /metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func readyPod(ctx context.Context, cs kubernetes.Interface, namespace, selector string) (string, error) {
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "", fmt.Errorf("listing pods %s in %s: %w", selector, namespace, err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return p.Name, nil
			}
		}
	}
	return "", fmt.Errorf("no Ready pod %s in %s", selector, namespace)
}

// forward opens a port-forward to the pod's port on a free local port, as
// kubectl port-forward does (WebSocket, falling back to SPDY on API servers
// that predate it).
func forward(cfg *rest.Config, cs *kubernetes.Clientset, namespace, pod string, port int) (int, func(), error) {
	url := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return 0, nil, err
	}
	spdyDialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	wsDialer, err := portforward.NewSPDYOverWebsocketDialerForStreaming(url, cfg)
	if err != nil {
		return 0, nil, err
	}
	dialer := portforward.NewFallbackDialerForStreaming(wsDialer, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	stopCh, ready := make(chan struct{}), make(chan struct{})
	var errOut strings.Builder
	fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, stopCh, ready, io.Discard, &errOut)
	if err != nil {
		return 0, nil, err
	}
	failed := make(chan error, 1)
	go func() { failed <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-failed:
		return 0, nil, fmt.Errorf("%w (%s)", err, errOut.String())
	case <-time.After(30 * time.Second):
		close(stopCh)
		return 0, nil, errors.New("port-forward not ready after 30s")
	}
	ports, err := fw.GetPorts()
	if err != nil {
		close(stopCh)
		return 0, nil, err
	}
	return int(ports[0].Local), func() { close(stopCh) }, nil
}

// Token returns a 10-minute token of the service account namespace/name
// (TokenRequest), creating the account when it does not exist.
func Token(ctx context.Context, cs kubernetes.Interface, namespace, name string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("creating service account %s/%s: %w", namespace, name, err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// BindMetricsReader binds the metrics-reader ClusterRole to the service
// account namespace/name in a ClusterRoleBinding called bindingName.
func BindMetricsReader(ctx context.Context, cs kubernetes.Interface, bindingName, namespace, name string) error {
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: bindingName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: MetricsReader},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("binding %s to %s/%s: %w", MetricsReader, namespace, name, err)
	}
	return nil
}

// Manager returns the manager's /metrics text, read with the token of a
// service account cnat-metrics-scraper in the manager's namespace that is
// bound to metrics-reader (both created on first use, and kept).
func Manager(ctx context.Context, cfg *rest.Config) ([]byte, error) {
	const scraper = "cnat-metrics-scraper"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := BindMetricsReader(ctx, cs, scraper, ManagerNamespace, scraper); err != nil {
		return nil, err
	}
	token, err := Token(ctx, cs, ManagerNamespace, scraper)
	if err != nil {
		return nil, err
	}
	status, body, err := Get(ctx, cfg, ManagerNamespace, ManagerSelector, MetricsPort, token)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d %s", status, strings.TrimSpace(string(body)))
	}
	return body, nil
}
