"""Griffe extension: jaxal's docstrings (Google style with reST roles) as Markdown.

jaxal's docstrings are Google style (``Args:``, ``Returns:``, ...) and use reST inline
markup, which mkdocstrings renders as Markdown. Before mkdocstrings parses a docstring of the
``jaxal`` package, this rewrites

* ``:func:`name``` (also ``class``, ``mod``, ``meth``, ``attr``, ``data``, ``obj``, ``exc``;
  ``~`` shows the last component only) as a cross-reference: ``name`` is resolved like
  Python resolves it in the docstring's scope, then in the enclosing packages
  (``:func:`top_k``` in ``jaxal.select._geometry`` is ``jaxal.select.top_k``). A reference
  to a documented public jaxal object, or to a jaxal name that exists nowhere (a typo), is a
  Markdown autoref, so ``mkdocs build --strict`` fails when it does not resolve; one to
  anything else (jax, private or undocumented helpers) is optional: a link when the target
  is rendered, plain code otherwise;
* ``:math:`x``` as inline math and ``.. math::`` blocks as display math (arithmatex);
* a paragraph ending in ``::`` (a reST literal block follows) as ending in ``:``;
* list items continued with reST's indentation (two spaces under ``* ``) re-indented to
  Markdown's four, so a blank line or a display formula inside an item keeps the list.

Docstrings are only read, never changed in the source files.
"""

import re
import textwrap

import griffe

_ROLE = re.compile(r":(?:py:)?(func|class|mod|meth|attr|data|obj|exc):`(~?)([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_MATH_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<first>.*)$")
_ITEM = re.compile(r"^( *)([*+-]|\d+[.)]) +")


def _member(scope: griffe.Object | griffe.Alias, dotted: str) -> griffe.Object | None:
    """The object at ``scope.<dotted>``, following aliases inside jaxal, or ``None``."""
    obj = scope
    for part in dotted.split("."):
        try:
            obj = obj.members[part]
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
    if isinstance(obj, griffe.Alias):
        try:
            obj = obj.final_target
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
    return obj


def _resolve(owner: griffe.Object, name: str) -> tuple[str, griffe.Object | None]:
    """The full identifier ``name`` refers to in ``owner``'s docstring, and its object."""
    root = owner
    while root.parent is not None:
        root = root.parent
    if name.split(".")[0] == root.name:
        return name, _member(root, name.partition(".")[2]) if "." in name else root
    scope: griffe.Object | None = owner
    while scope is not None:
        target = _member(scope, name)
        if target is not None:
            return f"{scope.path}.{name}", target
        scope = scope.parent
    return name, None


def _public(path: str) -> bool:
    return not any(part.startswith("_") for part in path.split("."))


def _reference(owner: griffe.Object, match: re.Match) -> str:
    _, tilde, name = match.groups()
    name = name.strip()
    shown = name.rpartition(".")[2] if tilde else name
    identifier, target = _resolve(owner, name)
    documented = target is not None and _public(identifier) and target.has_docstring
    unknown = target is None and (identifier.startswith("jaxal.") or "." not in identifier)
    if documented or unknown:  # unknown: a jaxal name that does not exist (a typo)
        return f"[`{shown}`][{identifier}]"
    return f'<autoref identifier="{identifier}" optional><code>{shown}</code></autoref>'


def _math_blocks(text: str) -> str:
    """``.. math::`` directives (content on the same line and/or indented below) as ``$$``."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _MATH_BLOCK.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = match["indent"]
        body = [match["first"]] if match["first"].strip() else []
        i += 1
        block: list[str] = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
        body += [line for line in textwrap.dedent("\n".join(block)).split("\n") if line.strip()]
        if out and out[-1].strip():
            out.append("")
        out += [f"{indent}$$", *(f"{indent}{line.strip()}" for line in body), f"{indent}$$", ""]
    return "\n".join(out)


def _list_items(text: str) -> str:
    """Continuation lines of list items indented 4 spaces past the marker (Markdown's rule)."""
    out: list[str] = []
    items: list[tuple[int, int, int]] = []  # (marker indent, content indent, new marker indent)
    for line in text.split("\n"):
        if not line.strip():
            out.append("")
            continue
        indent = len(line) - len(line.lstrip(" "))
        item = _ITEM.match(line)
        while items and indent <= items[-1][0]:  # a sibling item, or text after the list
            items.pop()
        new = indent if not items else max(items[-1][2] + 4 + indent - items[-1][1], 0)
        if item:
            items.append((indent, item.end(), new))
            if out and out[-1] and not _ITEM.match(out[-1]):
                out.append("")  # Markdown starts a list (or ends a paragraph) at a blank line
        out.append(" " * new + line.lstrip(" "))
    return "\n".join(out)


def markdown(owner: griffe.Object, text: str) -> str:
    """``text``, a docstring of ``owner``, with its reST markup rewritten (module docstring)."""
    text = _list_items(_math_blocks(text))
    text = _MATH_ROLE.sub(lambda m: "\\(" + m[1] + "\\)", text)
    text = _ROLE.sub(lambda m: _reference(owner, m), text)
    text = re.sub(r"(\S)::$", r"\1:", text, flags=re.M)
    return re.sub(r"^\s*::$", "", text, flags=re.M)


def _objects(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not isinstance(member, griffe.Alias):
            yield from _objects(member)


class RestRoles(griffe.Extension):
    """Rewrites every docstring of the ``jaxal`` package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        if pkg.name != "jaxal":
            return
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = markdown(obj, obj.docstring.value)
