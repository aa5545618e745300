import Foundation

extension RunReport {
    /// Precision and recall per class from a confusion matrix (rows actual, columns predicted); nil where undefined.
    static func precisionRecall(_ m: [[Int]]) -> [(precision: Double?, recall: Double?)] {
        let k = m.count
        return (0 ..< k).map { c in
            let tp = Double(m[c][c]), actual = Double(m[c].reduce(0, +)), predicted = Double((0 ..< k).reduce(0) { $0 + m[$1][c] })
            return (predicted > 0 ? tp / predicted : nil, actual > 0 ? tp / actual : nil)
        }
    }

    /// The self-contained page: inline CSS, SVG and images, one small script for sorting the predictions table.
    public func html() -> String {
        let e = SVGChart.escape
        var body = "<h1>\(e(title))</h1>\n<p class=\"meta\">Run <code>\(e(runDirectory))</code> · Gigapatch \(e(toolVersion))"
            + (commit.map { " · commit <code>\(e($0))</code>" } ?? "") + " · written \(ISO8601DateFormatter().string(from: generated))</p>\n"
        body += "<nav><a href=\"#curves\">Learning curves</a> <a href=\"#confusion\">Confusion matrix</a> <a href=\"#provenance\">Provenance</a>"
            + (predictions.isEmpty ? "" : " <a href=\"#predictions\">Predictions</a>") + (qc.isEmpty ? "" : " <a href=\"#qc\">Ingest QC</a>") + "</nav>\n"

        // Learning curves.
        body += "<section id=\"curves\"><h2>Learning curves</h2>"
        if epochs.isEmpty {
            body += "<p>No epochs recorded yet (metrics.jsonl is empty or missing).</p>"
        } else {
            let x = epochs.map { Double($0.epoch) }
            var wall = 0.0
            let time = epochs.map { wall += $0.seconds; return wall / 60 }
            func series(_ name: String, _ xs: [Double], _ ys: [Double?], _ color: Int) -> SVGChart.Series {
                SVGChart.Series(name: name, points: zip(xs, ys).compactMap { a, b in b.map { (a, $0) } }, color: SVGChart.palette[color])
            }
            let loss = [series("train loss", x, epochs.map(\.trainLoss), 0), series("val loss", x, epochs.map(\.valLoss), 1)]
            let acc = [series("train accuracy", x, epochs.map(\.trainAccuracy), 0), series("val accuracy", x, epochs.map(\.valAccuracy), 1),
                       series("val kappa", x, epochs.map(\.valKappa), 2)]
            body += "<div class=\"charts\">"
            body += SVGChart.lineChart(title: "Loss per epoch", xLabel: "epoch", series: loss)
            body += SVGChart.lineChart(title: "Accuracy and kappa per epoch", xLabel: "epoch", series: acc)
            body += SVGChart.lineChart(title: "Validation accuracy against wall time", xLabel: "minutes",
                                       series: [series("val accuracy", time, epochs.map(\.valAccuracy), 1), series("val kappa", time, epochs.map(\.valKappa), 2)])
            body += SVGChart.lineChart(title: "Learning rate", xLabel: "epoch", series: [series("lr", x, epochs.map(\.lr), 3)])
            body += SVGChart.lineChart(title: "Throughput", xLabel: "epoch", series: [series("patches/s", x, epochs.map(\.patchesPerS), 4)])
            body += SVGChart.lineChart(title: "Peak memory (MiB)", xLabel: "epoch", series: [series("peak RSS", x, epochs.map(\.peakRssMb), 5)])
            body += "</div>"
            body += "<table class=\"epochs\"><thead><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>val loss</th><th>val acc</th><th>val kappa</th><th>lr</th><th>seconds</th><th>patches/s</th><th>peak MiB</th></tr></thead><tbody>"
            func f(_ v: Double?, _ d: Int = 4) -> String { v.map { String(format: "%.\(d)f", $0) } ?? "" }
            for ep in epochs {
                let best = ep.epoch == bestEpoch ? " class=\"best\"" : ""
                body += "<tr\(best)><td>\(ep.epoch)</td><td>\(f(ep.trainLoss))</td><td>\(f(ep.trainAccuracy, 3))</td><td>\(f(ep.valLoss))</td><td>\(f(ep.valAccuracy, 3))</td><td>\(f(ep.valKappa, 3))</td><td>\(String(format: "%.2e", ep.lr))</td><td>\(f(ep.seconds, 0))</td><td>\(f(ep.patchesPerS, 0))</td><td>\(f(ep.peakRssMb, 0))</td></tr>"
            }
            body += "</tbody></table>"
        }
        body += "</section>\n"

        // Confusion matrix of the best epoch (else the last).
        body += "<section id=\"confusion\"><h2>Confusion matrix</h2>"
        let chosen = epochs.first { $0.epoch == bestEpoch } ?? epochs.last
        if let chosen, let m = chosen.valConfusion, !m.isEmpty {
            body += "<p>Validation, epoch \(chosen.epoch)" + (bestEpoch == chosen.epoch ? " (the best epoch, chosen by validation \(e(selectBy)))" : " (the last)") + ". Rows: actual class; columns: predicted.</p>"
            let largest = max(1, m.flatMap { $0 }.max() ?? 1), pr = Self.precisionRecall(m)
            body += "<table class=\"confusion\"><thead><tr><th></th>" + m.indices.map { "<th>\($0)</th>" }.joined() + "<th>recall</th></tr></thead><tbody>"
            for (r, row) in m.enumerated() {
                body += "<tr><th>\(r)</th>"
                for (c, n) in row.enumerated() {
                    let shade = Int(255 - 200 * Double(n) / Double(largest))
                    let color = r == c ? "rgb(\(shade),\(min(255, shade + 40)),\(shade))" : "rgb(255,\(shade),\(shade))"
                    body += "<td style=\"background:\(n == 0 ? "#fff" : color)\">\(n)</td>"
                }
                body += "<td>\(pr[r].recall.map { String(format: "%.2f", $0) } ?? "–")</td></tr>"
            }
            body += "<tr><th>precision</th>" + pr.map { "<td>\($0.precision.map { String(format: "%.2f", $0) } ?? "–")</td>" }.joined() + "<td></td></tr>"
            body += "</tbody></table>"
        } else {
            body += "<p>No validation confusion matrix recorded.</p>"
        }
        body += "</section>\n"

        // Provenance.
        body += "<section id=\"provenance\"><h2>Provenance</h2>"
        body += "<p>Best checkpoint: " + (bestEpoch.map { "epoch \($0), by validation \(e(selectBy))" } ?? "none yet") + ".</p>"
        if !checkpoint.isEmpty {
            body += "<h3>Model and data</h3><table class=\"kv\">" + checkpoint.map { "<tr><th>\(e($0.key))</th><td><code>\(e($0.value))</code></td></tr>" }.joined() + "</table>"
        }
        body += "<h3>Options</h3><table class=\"kv\">" + options.map { "<tr><th>\(e($0.key))</th><td><code>\(e($0.value))</code></td></tr>" }.joined() + "</table>"
        if let pipelineRun { body += "<h3>Pipeline run (run.json)</h3><pre>\(e(pipelineRun))</pre>" }
        body += "</section>\n"

        // Predictions.
        if !predictions.isEmpty {
            let k = predictions.map(\.probabilities.count).max() ?? 0
            let labelled = predictions.filter { $0.label != nil }
            let correct = labelled.filter { $0.label == $0.predicted }.count
            body += "<section id=\"predictions\"><h2>Predictions</h2><p>\(predictions.count) slides" + (predictionsFile.map { " from <code>\(e($0))</code>" } ?? "")
                + (labelled.isEmpty ? "" : String(format: "; accuracy %.3f on %d labelled", Double(correct) / Double(labelled.count), labelled.count))
                + ". Click a column to sort.</p>"
            body += "<table class=\"predictions sortable\"><thead><tr><th data-type=\"text\">slide</th><th data-type=\"number\">label</th><th data-type=\"number\">predicted</th><th data-type=\"number\">confidence</th><th data-type=\"number\">error</th>"
                + (0 ..< k).map { "<th data-type=\"number\">p\($0)</th>" }.joined() + "<th>thumbnail</th><th>heatmap</th></tr></thead><tbody>"
            for p in predictions {
                let error = p.label.map { abs($0 - p.predicted) }
                body += "<tr class=\"\(error.map { $0 == 0 ? "right" : "wrong" } ?? "")\"><td>\(e(p.imageID))</td><td>\(p.label.map(String.init) ?? "")</td><td>\(p.predicted)</td>"
                    + "<td>\(String(format: "%.3f", p.confidence))</td><td>\(error.map(String.init) ?? "")</td>"
                    + p.probabilities.map { "<td>\(String(format: "%.3f", $0))</td>" }.joined()
                    + "<td>" + (p.thumbnail.map { "<img class=\"heatmap\" alt=\"thumbnail of \(e(p.imageID))\" src=\"\($0)\">" } ?? "") + "</td>"
                    + "<td>" + (p.heatmap.map { "<img class=\"heatmap\" alt=\"heatmap of \(e(p.imageID))\" src=\"\($0)\">" } ?? "") + "</td></tr>"
            }
            body += "</tbody></table></section>\n"
        }

        // Ingest QC gallery.
        if !qc.isEmpty {
            body += "<section id=\"qc\"><h2>Ingest QC</h2><p>Each slide's thumbnail with the tissue outline (green) and the kept patch grid (blue); its legend gives the patches kept and the tissue threshold.</p><div class=\"gallery\">"
            for item in qc {
                if let picture = item.picture {
                    body += "<figure><img alt=\"QC of \(e(item.name))\" src=\"\(picture)\"><figcaption>\(e(item.name))</figcaption></figure>"
                }
            }
            body += "</div>"
            let problems = qc.filter { $0.problem != nil }
            if !problems.isEmpty {
                body += "<h3>Failed and empty slides</h3><ul class=\"problems\">" + problems.map { "<li><b>\(e($0.name))</b>: \(e($0.problem!))</li>" }.joined() + "</ul>"
            }
            body += "</section>\n"
        }

        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(e(title))</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
            h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
            .meta{color:#555}nav a{margin-right:14px}
            .charts{display:flex;flex-wrap:wrap;gap:12px}svg.chart{background:#fff;border:1px solid #eee}
            svg .title{font-size:13px;font-weight:600}svg .tick,svg .legend,svg .axis{font-size:11px;fill:#444}
            table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
            table.kv td,table.kv th{text-align:left}tr.best{background:#eef7ee}tr.wrong td:first-child{color:#b00}
            table.sortable th{cursor:pointer;background:#f6f6f6}img.heatmap{width:160px}
            .gallery{display:flex;flex-wrap:wrap;gap:10px}.gallery figure{margin:0;width:260px}.gallery img{width:260px}
            pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:400px}
            </style></head><body>
            \(body)
            <script>
            document.querySelectorAll('table.sortable').forEach(function (table) {
              var heads = table.querySelectorAll('th');
              heads.forEach(function (th, column) {
                th.addEventListener('click', function () {
                  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
                  var numeric = th.getAttribute('data-type') === 'number', up = th.getAttribute('data-order') !== 'asc';
                  rows.sort(function (a, b) {
                    var x = a.cells[column].textContent, y = b.cells[column].textContent;
                    var c = numeric ? (parseFloat(x || 'NaN') || 0) - (parseFloat(y || 'NaN') || 0) : x.localeCompare(y);
                    return up ? c : -c;
                  });
                  th.setAttribute('data-order', up ? 'asc' : 'desc');
                  rows.forEach(function (r) { body.appendChild(r); });
                });
              });
            });
            </script>
            </body></html>

            """
    }
}
