// Command trim-crd drops the descriptions nested below the At's
// spec.template from the generated CRD. The embedded PodTemplateSpec's
// descriptions alone make the CRD larger than the 262144 bytes of the
// last-applied-configuration annotation a plain `kubectl apply -f` writes;
// without them it is a third of that. The template field keeps its own
// description and those of its metadata and spec, so `kubectl explain
// at.spec.template` still says what it is; `kubectl explain pod.spec`
// documents the rest. controller-gen's crd:maxDescLen=0 would drop every
// description, the At's own included.
package main

import (
	"bytes"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// keepDepth is how many levels below spec.template keep their description.
const keepDepth = 1

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: trim-crd <crd.yaml>")
		os.Exit(2)
	}
	if err := trim(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "trim-crd:", err)
		os.Exit(1)
	}
}

func trim(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return fmt.Errorf("parsing %s: %w", path, err)
	}
	versions, _ := dig(crd, "spec", "versions").([]any)
	if len(versions) == 0 {
		return fmt.Errorf("%s: no spec.versions", path)
	}
	for _, v := range versions {
		template, ok := dig(v, "schema", "openAPIV3Schema", "properties", "spec", "properties", "template").(map[string]any)
		if !ok {
			return fmt.Errorf("%s: no spec.template in the schema", path)
		}
		strip(template, 0)
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	// controller-gen starts its files with a document marker; keep it.
	out = append([]byte("---\n"), out...)
	if bytes.Equal(out, data) {
		return nil
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// dig follows keys through nested maps; nil when one is missing.
func dig(node any, keys ...string) any {
	for _, k := range keys {
		m, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		node = m[k]
	}
	return node
}

// strip removes "description" from schema and every schema below it deeper
// than keepDepth. Property names are never touched: only schemas lose keys.
func strip(schema map[string]any, depth int) {
	if depth > keepDepth {
		delete(schema, "description")
	}
	for key, value := range schema {
		switch key {
		case "properties", "patternProperties", "definitions":
			if props, ok := value.(map[string]any); ok {
				for _, p := range props {
					if ps, ok := p.(map[string]any); ok {
						strip(ps, depth+1)
					}
				}
			}
		case "items", "additionalProperties", "not":
			if s, ok := value.(map[string]any); ok {
				strip(s, depth+1)
			}
		case "allOf", "anyOf", "oneOf":
			if list, ok := value.([]any); ok {
				for _, item := range list {
					if s, ok := item.(map[string]any); ok {
						strip(s, depth+1)
					}
				}
			}
		}
	}
}
