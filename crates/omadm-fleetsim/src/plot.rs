//! The run as a picture (SVG, through `plotters`): requests the server answered per
//! second, split into answered and turned away (503/429), above the sessions in flight.
//! Text is left to the viewer to render, so no font is needed to draw it.

use plotters::prelude::*;

use crate::report::Report;

/// Width and height of the picture, in pixels.
const SIZE: (u32, u32) = (1000, 620);

/// Draws `report` as SVG. `title` heads it; `time_scale` (1: real time) says how many
/// seconds of the modelled fleet one second of the run stands for, and is written on the
/// time axis.
pub fn svg(report: &Report, title: &str, time_scale: f64) -> Result<String, String> {
    let mut out = String::new();
    draw(&mut out, report, title, time_scale).map_err(|e| format!("cannot draw the plot: {e}"))?;
    Ok(out)
}

fn draw(
    out: &mut String,
    report: &Report,
    title: &str,
    time_scale: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(out, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(SIZE.1 * 3 / 5);
    let secs = report.seconds.len().max(1) as f64;
    let x_desc = if (time_scale - 1.0).abs() < f64::EPSILON {
        "seconds of the run".to_owned()
    } else {
        format!("seconds of the run (each stands for {time_scale} s of the modelled fleet)")
    };
    let at = |i: usize| i as f64 + 0.5;
    let whole = |v: &f64| format!("{v:.0}");

    let peak = report
        .seconds
        .iter()
        .map(|s| s.requests)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut chart = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..secs, 0f64..f64::from(peak) * 1.1)?;
    chart
        .configure_mesh()
        .y_desc("requests per second")
        .x_desc(x_desc.as_str())
        .x_label_formatter(&whole)
        .y_label_formatter(&whole)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let busy = RGBColor(0xd6, 0x27, 0x28);
    let ok = RGBColor(0x1f, 0x77, 0xb4);
    chart
        .draw_series(AreaSeries::new(
            report
                .seconds
                .iter()
                .enumerate()
                .map(|(i, s)| (at(i), f64::from(s.busy))),
            0.0,
            busy.mix(0.35),
        ))?
        .label("turned away (503, 429)")
        .legend(move |(x, y)| {
            Rectangle::new([(x, y - 5), (x + 18, y + 5)], busy.mix(0.35).filled())
        });
    chart
        .draw_series(LineSeries::new(
            report
                .seconds
                .iter()
                .enumerate()
                .map(|(i, s)| (at(i), f64::from(s.ok + s.other))),
            ok.stroke_width(1),
        ))?
        .label("answered")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], ok.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;

    let most = report
        .seconds
        .iter()
        .map(|s| s.in_flight)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut chart = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..secs, 0f64..f64::from(most) * 1.1)?;
    chart
        .configure_mesh()
        .y_desc("sessions in flight (most)")
        .x_desc(x_desc.as_str())
        .x_label_formatter(&whole)
        .y_label_formatter(&whole)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let sessions = RGBColor(0x2c, 0xa0, 0x2c);
    chart.draw_series(LineSeries::new(
        report
            .seconds
            .iter()
            .enumerate()
            .map(|(i, s)| (at(i), f64::from(s.in_flight))),
        sessions.stroke_width(1),
    ))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Second;

    #[test]
    fn the_picture_is_svg_with_its_title_and_axes() {
        let seconds = (0..30u32)
            .map(|i| Second {
                requests: 10 + i % 3,
                ok: if (10..15).contains(&i) { 0 } else { 10 + i % 3 },
                busy: if (10..15).contains(&i) { 10 + i % 3 } else { 0 },
                in_flight: 4,
                ..Second::default()
            })
            .collect();
        let report = crate::report::tests::report_of(seconds);
        let svg = svg(&report, "200 devices & an outage", 20.0).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("200 devices &amp; an outage"));
        assert!(svg.contains("each stands for 20 s"));
        assert!(svg.contains("sessions in flight"));
        assert!(svg.contains("turned away"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
