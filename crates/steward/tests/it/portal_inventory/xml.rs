//! A small well-formedness check of XML, for the lineage graph's inline SVG: elements nest and
//! close, attributes are named, quoted and given once, text and values hold no raw `<` and only
//! XML's entities. (No XML parser is a dependency of the workspace; this is all the test needs.)

use std::collections::BTreeMap;

/// One element of an SVG: its name, its attributes (entities decoded) and its text.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub text: String,
}

fn decoded(text: &str, at: usize) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let end = rest[amp..].find(';').ok_or(format!("a bare & near {at}"))?;
        let entity = &rest[amp + 1..amp + end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or(format!("&{entity}; is no XML entity (near {at})"))?
            }
        };
        out.push(c);
        rest = &rest[amp + end + 1..];
    }
    out.push_str(rest);
    if out.contains('<') && text.contains('<') {
        return Err(format!("a raw < in text or a value near {at}"));
    }
    Ok(out)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
}

/// Parses `xml` as a well-formed XML document (elements, attributes, text, the five entities
/// and character references; no DTD, comments or CDATA, which the page does not write), or
/// says where it is not.
pub fn parse_xml(xml: &str) -> Result<Vec<Node>, String> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut roots = 0;
    let mut at = 0;
    while at < xml.len() {
        let rest = &xml[at..];
        if !rest.starts_with('<') {
            let end = rest.find('<').unwrap_or(rest.len());
            let text = decoded(&rest[..end], at)?;
            match open.last() {
                Some((_, index)) => nodes[*index].text.push_str(&text),
                None if text.trim().is_empty() => {}
                None => return Err(format!("text outside the root near {at}")),
            }
            at += end;
            continue;
        }
        if let Some(closing) = rest.strip_prefix("</") {
            let end = closing.find('>').ok_or("an unclosed end tag")?;
            let name = closing[..end].trim();
            match open.pop() {
                Some((expected, _)) if expected == name => {}
                other => return Err(format!("</{name}> closes {other:?} near {at}")),
            }
            at += 2 + end + 1;
            continue;
        }
        let tag = &rest[1..];
        let name_end = tag
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .ok_or("an unclosed tag")?;
        let name = &tag[..name_end];
        if !is_name(name) {
            return Err(format!("<{name}> is not an element name near {at}"));
        }
        if open.is_empty() {
            roots += 1;
        }
        let mut attributes = BTreeMap::new();
        let mut cursor = &tag[name_end..];
        let self_closing;
        loop {
            cursor = cursor.trim_start();
            if let Some(after) = cursor.strip_prefix("/>") {
                self_closing = true;
                cursor = after;
                break;
            }
            if let Some(after) = cursor.strip_prefix('>') {
                self_closing = false;
                cursor = after;
                break;
            }
            let eq = cursor
                .find('=')
                .ok_or(format!("an attribute without a value near {at}"))?;
            let attribute = cursor[..eq].trim();
            if !is_name(attribute) {
                return Err(format!("{attribute:?} is not an attribute name near {at}"));
            }
            let value = cursor[eq + 1..].trim_start();
            let quote = value
                .chars()
                .next()
                .filter(|q| *q == '"' || *q == '\'')
                .ok_or(format!("{attribute}'s value is not quoted near {at}"))?;
            let close = value[1..]
                .find(quote)
                .ok_or(format!("{attribute}'s value is not closed"))?;
            let raw = &value[1..1 + close];
            if raw.contains('<') {
                return Err(format!("a raw < in {attribute} near {at}"));
            }
            if attributes
                .insert(attribute.to_owned(), decoded(raw, at)?)
                .is_some()
            {
                return Err(format!("{attribute} given twice near {at}"));
            }
            cursor = &value[1 + close + 1..];
        }
        nodes.push(Node {
            name: name.to_owned(),
            attributes,
            text: String::new(),
        });
        if !self_closing {
            open.push((name.to_owned(), nodes.len() - 1));
        }
        at = xml.len() - cursor.len();
    }
    if let Some((name, _)) = open.last() {
        return Err(format!("<{name}> is never closed"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(nodes)
}

#[test]
fn the_xml_check_refuses_what_is_not_well_formed() {
    assert!(parse_xml(r#"<svg a="1"><g><text>x &amp; y</text></g><rect/></svg>"#).is_ok());
    for bad in [
        "<svg><g></svg>",
        "<svg></g>",
        r#"<svg a=1></svg>"#,
        r#"<svg a="1" a="2"></svg>"#,
        "<svg>a & b</svg>",
        "<svg>&nbsp;</svg>",
        "<svg></svg><svg></svg>",
        "<svg>",
    ] {
        assert!(parse_xml(bad).is_err(), "{bad} passed");
    }
}
