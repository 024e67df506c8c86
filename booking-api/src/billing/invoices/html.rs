//! The printable view of an invoice or credit note: one self-contained HTML page (inline style,
//! no script, no external resource), every value escaped.

use super::http::InvoiceView;
use serde_json::Value;
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn field(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => escape(s),
        Value::Null => String::new(),
        other => escape(&other.to_string()),
    }
}

/// The page.
pub fn render(inv: &InvoiceView) -> String {
    let credit = inv.kind == "credit_note";
    let title = if credit { "Credit note" } else { "Invoice" };
    let mut p = String::new();
    // Writing into a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        p,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} {number}</title>\
         <style>body{{font-family:sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse;width:100%}}\
         th,td{{border-bottom:1px solid #ccc;padding:4px 6px;text-align:left}}td.n,th.n{{text-align:right}}\
         .parties{{display:flex;gap:4em}}@media print{{body{{margin:0}}}}</style></head><body>\
         <h1>{title} {number}</h1><p>Issued {issued}</p>",
        number = escape(&inv.number_text),
        issued = escape(&inv.issued_at.to_datetime().to_rfc3339()),
    );
    if let (Some(of), Some(reason)) = (inv.credits_invoice_id, &inv.reason) {
        let _ = write!(p, "<p>Cancels invoice #{of}: {}</p>", escape(reason));
    }
    if let Some(by) = inv.credited_by {
        let _ = write!(p, "<p><strong>Cancelled by credit note #{by}.</strong></p>");
    }
    let _ = write!(
        p,
        "<div class=\"parties\"><div><h2>Seller</h2><p>{}<br>{}</p></div>",
        field(&inv.seller, "name"),
        field(&inv.seller, "email")
    );
    if inv.buyer.is_object() {
        let _ = write!(
            p,
            "<div><h2>Customer</h2><p>{}<br>{}</p></div>",
            field(&inv.buyer, "name"),
            field(&inv.buyer, "email")
        );
    }
    let _ = write!(p, "</div>");
    if inv.station.is_object() {
        let _ = write!(
            p,
            "<p>Station: {} ({})</p>",
            field(&inv.station, "name"),
            field(&inv.station, "address")
        );
    }
    if inv.session.is_object() {
        let _ = write!(
            p,
            "<p>Session {}: {} to {}, {} Wh (charger {}, transaction {})</p>",
            field(&inv.session, "id"),
            field(&inv.session, "startedAt"),
            field(&inv.session, "endedAt"),
            field(&inv.session, "energyWh"),
            field(&inv.session, "centralStationId"),
            field(&inv.session, "transactionId"),
        );
    }
    let _ = write!(
        p,
        "<table><thead><tr><th>Description</th><th>From</th><th>To</th><th class=\"n\">Quantity</th>\
         <th class=\"n\">Unit price</th><th class=\"n\">VAT %</th><th class=\"n\">Amount</th></tr></thead><tbody>"
    );
    for l in &inv.lines {
        let _ = write!(
            p,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{} {}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&l.description),
            l.from.format("%Y-%m-%d %H:%M:%SZ"),
            l.to.format("%Y-%m-%d %H:%M:%SZ"),
            l.quantity.normalize(),
            escape(&l.unit),
            l.unit_price.normalize(),
            l.vat_percent.map(|v| v.normalize().to_string()).unwrap_or_default(),
            escape(&l.amount.to_string()),
        );
    }
    let _ = write!(p, "</tbody></table><table><tbody>");
    let _ = write!(
        p,
        "<tr><th>Total excluding VAT</th><td class=\"n\">{}</td></tr>",
        escape(&inv.total_excl_vat.to_string())
    );
    for v in &inv.vat {
        let rate = v
            .vat_percent
            .map(|r| format!("{}%", r.normalize()))
            .unwrap_or_else(|| "none".into());
        let _ = write!(
            p,
            "<tr><th>VAT {} on {}</th><td class=\"n\">{}</td></tr>",
            escape(&rate),
            escape(&v.base.to_string()),
            escape(&v.vat.to_string())
        );
    }
    let _ = write!(
        p,
        "<tr><th>Total</th><td class=\"n\"><strong>{}</strong></td></tr></tbody></table></body></html>",
        escape(&inv.total_incl_vat.to_string())
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(escape("Café 1"), "Café 1");
    }
}
