//! The dashboard's charts: drawn as SVG on the server by `charts-rs` (a maintained charting
//! crate; no chart is drawn by hand here), then given what a page needs around them.
//!
//! `charts-rs` writes presentation attributes only (`fill`, `stroke`, `font-size`) as long as
//! neither animation nor tooltips are asked for — those would bring a `<style>` element or
//! `style="…"` attributes, which the portal's CSP blocks — so the charts render as drawn.
//! [`finish`] then rewrites the root element: an `id` for the page and for tests, `role="img"`
//! with an `aria-label` and a `<title>` (every chart has a table of its numbers beside it),
//! and no fixed `width`/`height`, so the `viewBox` scales the chart to its column (the
//! stylesheet sets `width: 100%`).

use charts_rs::{BarChart, HorizontalBarChart, LineChart, Series, THEME_LIGHT};

/// The size charts are drawn at; they scale to their column.
const WIDTH: f32 = 560.0;
const HEIGHT: f32 = 320.0;
/// Labels a little larger than the crate's default, for a chart scaled down on a phone.
const FONT_SIZE: f32 = 15.0;
/// The page's own fonts (the crate measures text with the font it embeds, close enough).
const FONT_FAMILY: &str = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
/// Series colours with at least 3:1 contrast against white (WCAG 1.4.11) and apart from each
/// other: blue, dark red, green, purple.
const BLUE: &str = "#0b57d0";
const RED: &str = "#a4161a";
const GREEN: &str = "#1e7b34";
const PURPLE: &str = "#6b3fa0";

/// A series' colour, by what it means, the same in every chart: what went wrong or is urgent
/// is red, what is routine green, the rest blue or purple.
fn colour_of(series: &str, position: usize) -> &'static str {
    match series {
        "standard" | "complete" => GREEN,
        "emergency" | "incomplete" | "change failure rate" | "99th percentile" => RED,
        "90th percentile" | "emergency share" => PURPLE,
        "normal" | "median" => BLUE,
        _ => [BLUE, RED, GREEN, PURPLE][position % 4],
    }
}

/// A chart ready for a page: SVG markup (trusted: drawn here from numbers and fixed labels).
#[derive(Debug)]
pub(super) struct Chart {
    /// `<svg id="…" role="img" …>…</svg>`
    pub svg: String,
}

/// One series: its name and a value per category (`None`: unknown, not drawn).
pub(super) type Values = (&'static str, Vec<Option<f64>>);

/// What every chart shares: size, fonts, colours, a legend only when there are several series.
fn style(base: &mut charts_rs::ChartBase, series: usize) {
    base.width = WIDTH;
    base.height = HEIGHT;
    base.font_family = FONT_FAMILY.to_owned();
    base.series.colors = base
        .series_list
        .iter()
        .enumerate()
        .map(|(i, s)| colour_of(&s.name, i).into())
        .collect();
    // Room at the sides for labels the crate measures in its own font, narrower than the page's.
    base.margin.left += 12.0;
    base.margin.right += 20.0;
    base.legend.font.size = FONT_SIZE;
    base.legend.show = Some(series > 1);
    base.x_axis.font.size = FONT_SIZE;
    base.animation = None;
    base.series_list
        .iter_mut()
        .for_each(|s| s.label_show = false);
}

fn series(values: Vec<Values>) -> Vec<Series> {
    values
        .into_iter()
        .map(|(name, data)| {
            Series::new_nullable(
                name.to_owned(),
                data.into_iter().map(|v| v.map(|v| v as f32)).collect(),
            )
        })
        .collect()
}

/// A y axis from 0 whose ticks are whole numbers (counts), up to at least `top`.
fn count_axis(axis: &mut charts_rs::YAxisConfig, top: f64) {
    let top = top.ceil().max(1.0) as usize;
    let split = top.min(5);
    axis.min = Some(0.0);
    axis.max = Some((top.div_ceil(split) * split) as f32);
    axis.split_number = split;
    axis.font.size = FONT_SIZE;
}

/// A y axis from 0 for durations or rates, with `unit` after each value.
fn value_axis(axis: &mut charts_rs::YAxisConfig, max: Option<f32>, unit: &str) {
    axis.min = Some(0.0);
    axis.max = max;
    if max.is_some() {
        // 0, 20, 40 … 100 rather than thirds.
        axis.split_number = 5;
    }
    axis.formatter = Some(format!("{{c}}{unit}"));
    axis.font.size = FONT_SIZE;
}

fn largest(values: &[Values]) -> f64 {
    values
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0, |a, b| a.max(*b))
}

/// Bars of counts per category; `stacked` piles the series on each other.
pub(super) fn count_bars(
    id: &'static str,
    label: &str,
    categories: Vec<String>,
    values: Vec<Values>,
    stacked: bool,
) -> anyhow::Result<Chart> {
    let top = if stacked {
        (0..categories.len())
            .map(|i| {
                values
                    .iter()
                    .filter_map(|(_, v)| v.get(i).copied().flatten())
                    .sum()
            })
            .fold(0.0, f64::max)
    } else {
        largest(&values)
    };
    let count = values.len();
    let mut chart = BarChart::new_with_theme(series(values), categories, THEME_LIGHT);
    style(&mut chart.base, count);
    if stacked {
        chart
            .series_list
            .iter_mut()
            .for_each(|s| s.stack = Some("all".to_owned()));
    }
    if let Some(axis) = chart.y_axis_configs.first_mut() {
        count_axis(axis, top);
    }
    finish(id, label, &chart.svg().map_err(|e| drawing(id, e))?)
}

/// Bars of counts per category, laid horizontally (long category names).
pub(super) fn count_rows(
    id: &'static str,
    label: &str,
    categories: Vec<String>,
    values: Vec<Values>,
) -> anyhow::Result<Chart> {
    let top = largest(&values);
    let count = values.len();
    // The crate draws the first category at the bottom: hand them over reversed, so the page
    // reads them top-down in the order given.
    let categories: Vec<String> = categories.into_iter().rev().collect();
    let values: Vec<Values> = values
        .into_iter()
        .map(|(name, v)| (name, v.into_iter().rev().collect()))
        .collect();
    let mut chart = HorizontalBarChart::new_with_theme(series(values), categories, THEME_LIGHT);
    style(&mut chart.base, count);
    chart.height = HEIGHT + 40.0;
    chart.x_axis.font.size = FONT_SIZE;
    // The category labels are measured in the crate's font, a little narrower than the page's:
    // a wider gap keeps their ends off the bars.
    chart.x_axis.name_gap += 12.0;
    // The value axis of a horizontal chart is configured as its y axis: whole numbers there.
    if let Some(axis) = chart.y_axis_configs.first_mut() {
        count_axis(axis, top);
    }
    finish(id, label, &chart.svg().map_err(|e| drawing(id, e))?)
}

/// Bars of durations (hours) or other values per category, one bar per series.
pub(super) fn value_bars(
    id: &'static str,
    label: &str,
    categories: Vec<String>,
    values: Vec<Values>,
    unit: &str,
) -> anyhow::Result<Chart> {
    let count = values.len();
    let mut chart = BarChart::new_with_theme(series(values), categories, THEME_LIGHT);
    style(&mut chart.base, count);
    if let Some(axis) = chart.y_axis_configs.first_mut() {
        value_axis(axis, None, unit);
    }
    finish(id, label, &chart.svg().map_err(|e| drawing(id, e))?)
}

/// Lines of percentages (0–100) over categories; an unknown value leaves a gap.
pub(super) fn percent_lines(
    id: &'static str,
    label: &str,
    categories: Vec<String>,
    values: Vec<Values>,
) -> anyhow::Result<Chart> {
    let count = values.len();
    let mut chart = LineChart::new_with_theme(series(values), categories, THEME_LIGHT);
    style(&mut chart.base, count);
    chart.series.stroke_width = 3.0;
    if let Some(axis) = chart.y_axis_configs.first_mut() {
        value_axis(axis, Some(100.0), "%");
    }
    finish(id, label, &chart.svg().map_err(|e| drawing(id, e))?)
}

fn drawing(id: &str, error: impl std::fmt::Debug) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart {id}: {error:?}")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `svg` (as `charts-rs` wrote it) with the root element a page needs: `id`, `class`,
/// `role="img"`, `aria-label` and a `<title>` saying `label`, and its `viewBox` without a
/// fixed size. Refuses SVG that would not render under the CSP (a `<style>` element or a
/// `style` attribute) rather than serve a chart the browser will not draw.
pub(super) fn finish(id: &'static str, label: &str, svg: &str) -> anyhow::Result<Chart> {
    if svg.contains("<style") || svg.contains(" style=") {
        anyhow::bail!("the chart {id} has styles the portal's CSP would block");
    }
    let open_end = svg
        .find('>')
        .filter(|_| svg.starts_with("<svg "))
        .ok_or_else(|| anyhow::anyhow!("the chart {id} is not an <svg> element"))?;
    let root = &svg[..open_end];
    let attribute = |name: &str| {
        let start = root.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = start + root[start..].find('"')?;
        Some(&root[start..end])
    };
    let view_box =
        attribute("viewBox").ok_or_else(|| anyhow::anyhow!("the chart {id} has no viewBox"))?;
    let label = escape(label);
    Ok(Chart {
        svg: format!(
            r#"<svg id="{id}" class="dash-chart" role="img" aria-label="{label}" viewBox="{view_box}" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>{}"#,
            &svg[open_end + 1..]
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weeks() -> Vec<String> {
        vec!["02 Mar".into(), "09 Mar".into(), "16 Mar".into()]
    }

    /// What the browser test checks, checked here first: an `<svg role="img">` with its id, a
    /// label and a title, drawn elements, and nothing the CSP blocks.
    fn check(chart: &Chart, id: &str, drawn: &str) {
        let svg = &chart.svg;
        assert!(
            svg.starts_with(&format!(
                r#"<svg id="{id}" class="dash-chart" role="img" aria-label=""#
            )),
            "{svg}"
        );
        assert!(svg.contains("<title>"), "{svg}");
        assert!(svg.contains(r#"viewBox="0 0 560 "#), "{svg}");
        assert!(!svg.contains("style"), "nothing the CSP blocks: {svg}");
        assert!(
            !svg[..svg.find('>').unwrap_or(0)].contains(" width="),
            "{svg}"
        );
        assert!(svg.contains(drawn), "{drawn} in {svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
    }

    #[test]
    fn stacked_bars_draw_each_series_with_whole_number_ticks() {
        let chart = count_bars(
            "chart-test-stacked",
            "Changes by type",
            weeks(),
            vec![
                ("normal", vec![Some(3.0), Some(0.0), Some(2.0)]),
                ("emergency", vec![Some(1.0), Some(0.0), Some(4.0)]),
            ],
            true,
        )
        .expect("drawn");
        check(&chart, "chart-test-stacked", "<rect");
        assert!(
            chart.svg.contains(r#"data-series="emergency""#),
            "{}",
            chart.svg
        );
        assert!(chart.svg.contains(r#"data-value="4""#), "{}", chart.svg);
        // Stacks reach 6: the axis goes to 6 in whole steps, never 5.4.
        assert!(chart.svg.contains(">\n6\n<"), "{}", chart.svg);
        assert!(!chart.svg.contains(".4\n"), "{}", chart.svg);
    }

    #[test]
    fn lines_leave_gaps_for_unknown_values_and_read_in_percent() {
        let chart = percent_lines(
            "chart-test-lines",
            "Failure rate",
            weeks(),
            vec![
                ("failure rate", vec![Some(50.0), None, Some(25.0)]),
                ("emergency share", vec![Some(0.0), Some(10.0), None]),
            ],
        )
        .expect("drawn");
        check(&chart, "chart-test-lines", "<path");
        assert!(chart.svg.contains("100%"), "{}", chart.svg);
    }

    #[test]
    fn rows_and_value_bars_are_drawn_too() {
        let rows = count_rows(
            "chart-test-rows",
            "By state",
            vec!["draft".into(), "pending_approval".into()],
            vec![("changes", vec![Some(1.0), Some(3.0)])],
        )
        .expect("drawn");
        check(&rows, "chart-test-rows", "<rect");
        let bars = value_bars(
            "chart-test-values",
            "Latency",
            vec!["all".into(), "normal".into()],
            vec![
                ("p50", vec![Some(1.5), None]),
                ("p90", vec![Some(4.0), None]),
            ],
            " h",
        )
        .expect("drawn");
        check(&bars, "chart-test-values", "<rect");
    }

    #[test]
    fn an_empty_chart_still_draws_its_axes() {
        let chart =
            count_bars("chart-test-empty", "Nothing", vec![], vec![], false).expect("drawn");
        check(&chart, "chart-test-empty", "<line");
    }

    #[test]
    fn labels_are_escaped_and_styles_refused() {
        let chart = finish(
            "chart-x",
            r#"a <b> & "c""#,
            r#"<svg width="1" height="1" viewBox="0 0 1 1" xmlns="http://www.w3.org/2000/svg"><rect/></svg>"#,
        )
        .expect("finished");
        assert!(
            chart
                .svg
                .contains(r#"aria-label="a &lt;b&gt; &amp; &quot;c&quot;""#),
            "{}",
            chart.svg
        );
        assert!(
            finish(
                "chart-x",
                "x",
                r#"<svg viewBox="0 0 1 1"><style>rect{}</style></svg>"#
            )
            .is_err()
        );
        assert!(
            finish(
                "chart-x",
                "x",
                r#"<svg viewBox="0 0 1 1"><rect style="fill:red"/></svg>"#
            )
            .is_err()
        );
    }
}
