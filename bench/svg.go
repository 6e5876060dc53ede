package main

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var throughputRow = regexp.MustCompile(`^throughput c=(\d+): (.+)$`)

// writeChart draws requests/s against concurrency for each path, from the
// report's rows, as a self-contained SVG.
func writeChart(rep *Report, path string) error {
	series := map[string]map[int]float64{}
	var levels []int
	seen := map[int]bool{}
	for _, r := range rep.Rows {
		m := throughputRow.FindStringSubmatch(r.Name)
		if m == nil || strings.Contains(m[2], " vs ") {
			continue
		}
		c, _ := strconv.Atoi(m[1])
		if series[m[2]] == nil {
			series[m[2]] = map[int]float64{}
		}
		series[m[2]][c] = r.Value
		if !seen[c] {
			seen[c] = true
			levels = append(levels, c)
		}
	}
	sort.Ints(levels)
	names := make([]string, 0, len(series))
	for n := range series {
		names = append(names, n)
	}
	sort.Strings(names)
	maxV := 1.0
	for _, s := range series {
		for _, v := range s {
			maxV = math.Max(maxV, v)
		}
	}
	const w, h, left, bottom, top, right = 760, 420, 80, 60, 40, 20
	x := func(i int) float64 {
		if len(levels) < 2 {
			return left
		}
		return left + float64(i)*float64(w-left-right)/float64(len(levels)-1)
	}
	y := func(v float64) float64 { return float64(h-bottom) - v/maxV*float64(h-bottom-top) }
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">requests/s by client concurrency (%s)</text>`+"\n", left, escape(rep.Machine))
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", left, top, left, h-bottom)
	for i := 0; i <= 4; i++ {
		v := maxV * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="end">%.0f</text>`+"\n", left-6, y(v)+4, v)
	}
	for i, c := range levels {
		fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">c=%d</text>`+"\n", x(i), h-bottom+18, c)
	}
	for si, n := range names {
		color := colors[si%len(colors)]
		var pts []string
		for i, c := range levels {
			if v, ok := series[n][c]; ok {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(i), y(v), color)
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			left+10, top+6+si*16, color, left+26, top+15+si*16, escape(n))
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
