//! A small SVG writer shared by the pictures: one element a line, attributes
//! in the order given, text and attribute values escaped for XML.

use core::fmt::{Display, Write};

/// An SVG document being written.
pub(crate) struct Svg {
    out: String,
    /// Inside [`Svg::on_one_line`]: elements end without a line break.
    inline: bool,
}

impl Svg {
    /// Opens `<svg>` with the namespace and `attributes`.
    pub(crate) fn new(attributes: &[(&str, &dyn Display)]) -> Svg {
        let mut svg = Svg::fragment();
        let mut root = svg
            .element("svg")
            .attr("xmlns", "http://www.w3.org/2000/svg");
        for (name, value) in attributes {
            root = root.attr(name, value);
        }
        root.open();
        svg
    }

    /// A part of a document, to be [appended](Svg::append) to one.
    pub(crate) fn fragment() -> Svg {
        Svg {
            out: String::new(),
            inline: false,
        }
    }

    /// Writes `part` here.
    pub(crate) fn append(&mut self, part: Svg) {
        self.out.push_str(&part.out);
    }

    /// Starts an element; its attributes follow, then one of
    /// [`Element::empty`], [`Element::text`] or [`Element::open`].
    pub(crate) fn element(&mut self, name: &'static str) -> Element<'_> {
        self.out.push('<');
        self.out.push_str(name);
        Element { svg: self, name }
    }

    /// Closes an element opened with [`Element::open`].
    pub(crate) fn close(&mut self, name: &str) {
        let _ = write!(self.out, "</{name}>");
        self.end_line();
    }

    /// Writes markup that is already SVG (fixed definitions), as given.
    pub(crate) fn raw(&mut self, markup: &str) {
        self.out.push_str(markup);
    }

    /// Writes what `draw` writes on one line.
    pub(crate) fn on_one_line(&mut self, draw: impl FnOnce(&mut Svg)) {
        let outer = core::mem::replace(&mut self.inline, true);
        draw(self);
        self.inline = outer;
        self.end_line();
    }

    /// Closes `<svg>` and returns the document.
    pub(crate) fn finish(mut self) -> String {
        self.close("svg");
        self.out
    }

    fn end_line(&mut self) {
        if !self.inline {
            self.out.push('\n');
        }
    }
}

/// An element whose start tag is being written.
pub(crate) struct Element<'a> {
    svg: &'a mut Svg,
    name: &'static str,
}

impl Element<'_> {
    /// Adds `name="value"`.
    pub(crate) fn attr(self, name: &str, value: impl Display) -> Self {
        let _ = write!(self.svg.out, " {name}=\"{}\"", escape(&value.to_string()));
        self
    }

    /// Adds `name="value"` when there is a value.
    pub(crate) fn attr_if(self, name: &str, value: Option<impl Display>) -> Self {
        match value {
            Some(value) => self.attr(name, value),
            None => self,
        }
    }

    /// Ends the element with no content: `<name …/>`.
    pub(crate) fn empty(self) {
        self.svg.out.push_str("/>");
        self.svg.end_line();
    }

    /// Ends the element with `text` as its content.
    pub(crate) fn text(self, text: impl Display) {
        let _ = write!(
            self.svg.out,
            ">{}</{}>",
            escape(&text.to_string()),
            self.name
        );
        self.svg.end_line();
    }

    /// Ends the element with `markup` as its content, as given: fixed prose
    /// (which may hold an apostrophe) around data that is already escaped.
    pub(crate) fn markup(self, markup: &str) {
        let _ = write!(self.svg.out, ">{markup}</{}>", self.name);
        self.svg.end_line();
    }

    /// Ends the start tag; [`Svg::close`] closes the element.
    pub(crate) fn open(self) {
        self.svg.out.push('>');
        self.svg.end_line();
    }
}

/// `value` with one decimal, as coordinates are written.
pub(crate) fn tenths(value: f64) -> impl Display {
    Rounded(value, 1)
}

/// `value` with two decimals, for stripes that must add up to a bar.
pub(crate) fn hundredths(value: f64) -> impl Display {
    Rounded(value, 2)
}

struct Rounded(f64, usize);

impl Display for Rounded {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:.*}", self.1, self.0)
    }
}

/// Escapes text for XML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 text.
            c if c.is_control() && !matches!(c, '\t' | '\n') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
