"""Builtins, the login and tag gates: ``memb_is_logged_in``, ``memb_has_any_tag``, ``..._all_tags``.

Tags are named by id or by name, case-insensitively, in a comma list; ``-X`` means "lacks X".

* ``memb_has_any_tag`` passes if the contact holds any positive item, or (when negatives are
  given) holds none of the negated ones.
* ``memb_has_all_tags`` passes if the contact holds every positive item and none of the negated.
* An anonymous visitor holds no tags, and only a negatives-only list can pass for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shortcodes.context import Context
from shortcodes.errors import GateError
from shortcodes.nodes import ShortcodeNode
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode

from .common import Report, given_attrs, split_list, static_value, text_of, value_offset
from .gates import NOT, register_gate

if TYPE_CHECKING:
    from shortcodes.environment import Environment

#: Memberium accepts all four spellings; the first one given wins.
TAG_ATTRIBUTES = ("tagid", "tagids", "tag_id", "tag_ids")

_TAG_DOC = "comma list of tag ids or names; `-X` means the contact lacks X"


def tag_lists(text: str) -> tuple[list[str], list[str]]:
    """Split a tag list into (positives, negatives); GateError when it names no tag."""
    positives: list[str] = []
    negatives: list[str] = []
    for item in split_list(text):
        if item.startswith("-"):
            name = item[1:].strip()
            if not name:
                raise GateError(f"'{item}' names no tag: write -TagName or -123")
            negatives.append(name)
        else:
            positives.append(item)
    if not positives and not negatives:
        raise GateError('the tag list is empty: give tagid="Tag name or id, ..."')
    return positives, negatives


def _tag_text(sc: Shortcode) -> str:
    attrs = sc.attrs
    for key in TAG_ATTRIBUTES:
        if key in attrs:
            return text_of(attrs[key])
    raise GateError('needs tagid="Tag name or id, ..."')


def has_any_tag(sc: Shortcode, ctx: Context) -> bool:
    """Passes if the contact holds any listed tag, or lacks every ``-X`` one."""
    positives, negatives = tag_lists(_tag_text(sc))
    contact = ctx.contact
    if contact is None:
        return not positives
    if any(contact.has_tag(tag) for tag in positives):
        return True
    return bool(negatives) and not any(contact.has_tag(tag) for tag in negatives)


def has_all_tags(sc: Shortcode, ctx: Context) -> bool:
    """Passes if the contact holds every listed tag and none of the ``-X`` ones."""
    positives, negatives = tag_lists(_tag_text(sc))
    contact = ctx.contact
    if contact is None:
        return not positives
    return all(contact.has_tag(t) for t in positives) and not any(
        contact.has_tag(t) for t in negatives
    )


def is_logged_in(sc: Shortcode, ctx: Context) -> bool:
    """Passes if a contact is logged in."""
    return ctx.contact is not None


def check_tags(node: ShortcodeNode, report: Report) -> None:
    """Lint: a tag list must be given, once, and name at least one tag."""
    given = given_attrs(node)
    keys = [key for key in TAG_ATTRIBUTES if key in given]
    if not keys:
        report(
            node.offset, len(node.name) + 1, f'[{node.name}] needs tagid="Tag name or id"', "error"
        )
        return
    for extra in keys[1:]:
        item = given[extra][1]
        report(
            node.body_offset + item.offset,
            len(item.source),
            f"[{node.name}]: {extra} is ignored because {keys[0]} is given",
            "warning",
        )
    value, item = given[keys[0]]
    if static_value(value):
        try:
            tag_lists(value)
        except GateError as error:
            report(value_offset(node, item), max(1, len(value)), f"[{node.name}]: {error}", "error")


def register(env: Environment) -> None:
    """Register the login and tag gates with their numbered aliases."""
    tag_attrs = [
        Attribute(key, str, doc=_TAG_DOC if key == "tagid" else "same as tagid")
        for key in TAG_ATTRIBUTES
    ]
    register_gate(
        env,
        "memb_is_logged_in",
        is_logged_in,
        attributes=[NOT],
        description="Shows its content to logged-in contacts (the else branch to visitors).",
        example="[memb_is_logged_in]Welcome back![else]Please log in.[/memb_is_logged_in]",
    )
    register_gate(
        env,
        "memb_has_any_tag",
        has_any_tag,
        attributes=[*tag_attrs, NOT],
        check=check_tags,
        description="Passes if the contact holds any listed tag (by id or name), or lacks "
        "every `-X` one; anonymous visitors pass only a negatives-only list.",
        example='[memb_has_any_tag tagid="Owns Course B,Gold"]<a href="/courses/b">Open</a>'
        "[else]Not yours yet.[/memb_has_any_tag]",
    )
    register_gate(
        env,
        "memb_has_all_tags",
        has_all_tags,
        attributes=[*tag_attrs, NOT],
        check=check_tags,
        description="Passes if the contact holds every listed tag and none of the `-X` ones.",
        example='[memb_has_all_tags tagid="Gold,-Suspended"]Gold lounge[/memb_has_all_tags]',
    )
