// Command junit-summary adds up JUnit XML reports (go test via gotestsum,
// chainsaw, kuttl) and prints one closing line, "N passed, N failed, N skipped".
// It exits 1 when a test failed. A report that is missing, unreadable or holds
// no test at all counts as one failed test: its tier did not run.
package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"os"
)

type testCase struct {
	Name    string    `xml:"name,attr"`
	Failure *struct{} `xml:"failure"`
	Error   *struct{} `xml:"error"`
	Skipped *struct{} `xml:"skipped"`
}

type testSuite struct {
	Suites []testSuite `xml:"testsuite"`
	Cases  []testCase  `xml:"testcase"`
}

type counts struct{ passed, failed, skipped int }

func (c *counts) add(s testSuite) {
	for _, inner := range s.Suites {
		c.add(inner)
	}
	for _, tc := range s.Cases {
		switch {
		case tc.Failure != nil || tc.Error != nil:
			c.failed++
		case tc.Skipped != nil:
			c.skipped++
		default:
			c.passed++
		}
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: junit-summary REPORT.xml...")
		os.Exit(2)
	}
	var total counts
	for _, path := range os.Args[1:] {
		c, err := count(path)
		if err == nil && c == (counts{}) {
			err = errors.New("no test in it")
		}
		if err != nil {
			// A tier that died before writing its report failed as a whole.
			fmt.Printf("  %s: %v: counted as 1 failed\n", path, err)
			c = counts{failed: 1}
		} else {
			fmt.Printf("  %s: %d passed, %d failed, %d skipped\n", path, c.passed, c.failed, c.skipped)
		}
		total.passed, total.failed, total.skipped = total.passed+c.passed, total.failed+c.failed, total.skipped+c.skipped
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", total.passed, total.failed, total.skipped)
	if total.failed > 0 {
		os.Exit(1)
	}
}

func count(path string) (counts, error) {
	var c counts
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	var root testSuite
	if err := xml.Unmarshal(raw, &root); err != nil {
		return c, err
	}
	c.add(root)
	return c, nil
}
