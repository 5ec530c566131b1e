"""Generated HTML documents for property tests: any tags, broken nesting, deep nests, long
attributes, odd doctypes."""

from __future__ import annotations

from hypothesis import strategies as st

_TAGS = st.sampled_from(
    [
        "div",
        "p",
        "a",
        "table",
        "tr",
        "td",
        "ul",
        "li",
        "main",
        "article",
        "h1",
        "span",
        "pre",
        "b",
        "script",
        "style",
        "form",
        "svg",
        "template",
        "iframe",
    ]
)
_DOCTYPES = st.sampled_from(
    [
        "",
        "<!DOCTYPE html>",
        '<!DOCTYPE html SYSTEM "about:legacy-compat">',
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "x">',
        "<!doctype>",
        "<!DOCTYPE \x00>",
    ]
)
_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@st.composite
def html_pages(draw: st.DrawFn) -> str:
    parts = [draw(_DOCTYPES)]
    for _ in range(draw(st.integers(0, 40))):
        tag = draw(_TAGS)
        choice = draw(st.integers(0, 5))
        if choice == 0:
            parts.append(f"<{tag} class='{draw(_TEXT)}' href='{draw(_TEXT)}'>")
        elif choice == 1:
            parts.append(f"</{tag}>")
        elif choice == 2:
            parts.append(draw(_TEXT))
        elif choice == 3:
            parts.append(f"<{tag} data-x='{'y' * draw(st.integers(0, 20_000))}'>")
        elif choice == 4:
            depth = draw(st.integers(0, 600))
            parts.append(f"<{tag}>" * depth + draw(_TEXT))
        else:
            parts.append("\x00" + draw(_TEXT))
    return "".join(parts)
