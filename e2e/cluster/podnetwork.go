package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// bridgeConflist is the CNI config the offline node image carries (see
// hack/airgap/node): a bridge with host-local addresses from the whole pod
// subnet, which is right for one node only. kind's own node image has no
// such file; it runs kindnetd, which does for any number of nodes what
// connectPodNetworks does here.
const bridgeConflist = "/etc/cni/net.d/10-cnat-bridge.conflist"

// connectPodNetworks makes pods on different nodes of an offline cluster
// reach each other without kindnetd (whose image cannot be pulled): each node
// gives its pods addresses from its own podCIDR (allocated by the
// controller-manager), and every node routes the other nodes' podCIDRs to
// them over the kind network. Pods that got an address outside their node's
// podCIDR before this ran (coredns, at the start) are deleted so that their
// owner recreates them with a routable one. Safe to run again.
func (c *Cluster) connectPodNetworks(ctx context.Context) error {
	all, err := c.provider.ListNodes(c.Name)
	if err != nil {
		return err
	}
	if len(all) < 2 {
		return nil
	}
	if all[0].Command("test", "-e", bridgeConflist).Run() != nil {
		logf("the nodes have no %s: their CNI (kind's kindnetd) connects them", bridgeConflist)
		return nil
	}
	cs, err := c.clientset()
	if err != nil {
		return err
	}
	cidrs := map[string]string{}
	err = c.waitUntil(ctx, "podCIDRs of every node", func(ctx context.Context, cs *kubernetes.Clientset) error {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, n := range list.Items {
			if n.Spec.PodCIDR != "" {
				cidrs[n.Name] = n.Spec.PodCIDR
			}
		}
		if len(cidrs) < len(all) {
			return fmt.Errorf("%d of %d nodes have a podCIDR", len(cidrs), len(all))
		}
		return nil
	})
	if err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	v1alpha4.SetDefaultsCluster(cfg)
	for _, node := range all {
		if err := useOwnPodCIDR(node, cidrs[node.String()]); err != nil {
			return fmt.Errorf("node %s: %w", node, err)
		}
		if err := masqueradeLeavingPods(node, cidrs[node.String()], cfg.Networking.PodSubnet); err != nil {
			return fmt.Errorf("node %s: %w", node, err)
		}
		for _, other := range all {
			if other.String() == node.String() {
				continue
			}
			ip, _, err := other.IP()
			if err != nil {
				return fmt.Errorf("node %s: %w", other, err)
			}
			if err := node.Command("ip", "route", "replace", cidrs[other.String()], "via", ip).Run(); err != nil {
				return fmt.Errorf("node %s: route to %s via %s: %w", node, cidrs[other.String()], ip, err)
			}
		}
		logf("node %s: pods in %s, routes to the other nodes' pods", node, cidrs[node.String()])
	}
	return deleteMisaddressedPods(ctx, cs, cidrs)
}

// useOwnPodCIDR rewrites the node's bridge conflist to hand out addresses
// from cidr only. The CNI plugin reads the file on every pod sandbox.
func useOwnPodCIDR(node nodes.Node, cidr string) error {
	raw, err := kindexec.Output(node.Command("cat", bridgeConflist))
	if err != nil {
		return err
	}
	var conflist struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &conflist); err != nil {
		return fmt.Errorf("%s: %w", bridgeConflist, err)
	}
	if len(conflist.Plugins) == 0 || conflist.Plugins[0]["type"] != "bridge" {
		return fmt.Errorf("%s: the first plugin is not the bridge", bridgeConflist)
	}
	ipam, ok := conflist.Plugins[0]["ipam"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s: the bridge has no ipam", bridgeConflist)
	}
	ipam["ranges"] = [][]map[string]string{{{"subnet": cidr}}}
	// Masquerading per pod costs the bridge plugin iptables chains and calls
	// for every pod, which a burst of hundreds of pods on two cores cannot
	// afford; masqueradeLeavingPods adds the one rule a node needs instead.
	conflist.Plugins[0]["ipMasq"] = false
	out, err := json.MarshalIndent(conflist, "", "  ")
	if err != nil {
		return err
	}
	return node.Command("sh", "-c", "cat >"+bridgeConflist).SetStdin(strings.NewReader(string(out))).Run()
}

// masqueradeLeavingPods gives the node the one NAT rule its pods need, as
// kindnetd does: traffic from them to anything outside the cluster's pod
// subnet (a node, the host) leaves with the node's address. Pod-to-pod traffic
// keeps its addresses; the routes carry it.
func masqueradeLeavingPods(node nodes.Node, cidr, podSubnet string) error {
	rule := []string{"POSTROUTING", "-s", cidr, "!", "-d", podSubnet, "-j", "MASQUERADE"}
	if node.Command("iptables", append([]string{"-t", "nat", "-C"}, rule...)...).Run() == nil {
		return nil
	}
	return node.Command("iptables", append([]string{"-t", "nat", "-A"}, rule...)...).Run()
}

// deleteMisaddressedPods deletes the pods (not host-network) whose address
// lies outside their node's podCIDR: no other node routes to it.
func deleteMisaddressedPods(ctx context.Context, cs *kubernetes.Clientset, cidrs map[string]string) error {
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, pod := range pods.Items {
		if pod.Spec.HostNetwork || pod.Status.PodIP == "" || pod.Spec.NodeName == "" {
			continue
		}
		if inside(pod.Status.PodIP, cidrs[pod.Spec.NodeName]) {
			continue
		}
		logf("pod %s/%s has %s, outside %s of node %s: deleting it to be recreated",
			pod.Namespace, pod.Name, pod.Status.PodIP, cidrs[pod.Spec.NodeName], pod.Spec.NodeName)
		err := cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	return nil
}

func inside(ip, cidr string) bool {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(ip)
	return err == nil && prefix.Contains(addr)
}
