"""Hardened parsing of small request documents (S3 XML bodies): defusedxml with DTDs, entity
declarations and external references refused, a size cap checked before the parser sees a byte
(JAY_SPEC §8.2 item 17), and element names compared without their namespace (clients send the
S3 namespace, or none). Shared by every module that reads a request document."""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from jay.errors import JayError, MalformedXML


def local_name(tag: object) -> str:
    """An element's name without its namespace; "" for comments and processing instructions."""
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def parse_root(
    body: bytes, root_name: str, max_bytes: int, error: type[JayError] = MalformedXML
) -> Element:
    """The root of ``body``, which must be a ``root_name`` document of at most ``max_bytes``;
    ``error`` (MalformedXML by default) otherwise."""
    if len(body) > max_bytes:
        raise error(f"The XML you provided was larger than the maximum of {max_bytes} bytes")
    try:
        root: Element = fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except (ParseError, DefusedXmlException, ValueError, SyntaxError):
        raise error() from None
    if local_name(root.tag) != root_name:
        raise error()
    return root


def children(element: Element, name: str) -> list[Element]:
    return [child for child in element if local_name(child.tag) == name]


def first_child(element: Element, name: str) -> Element | None:
    for child in element:
        if local_name(child.tag) == name:
            return child
    return None
