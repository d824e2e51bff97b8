"""mkdocs hook: README.md's sections as pages, so the site never drifts from the README.

README's text before its first ``## `` heading becomes ``index.md``; each ``## `` section becomes
``guide/<slug>.md`` (its ``### `` headings one level up); CHANGELOG.md becomes ``changelog.md``.
Links are rewritten for the site: ``docs/X`` -> ``X`` relative to the page, ``#anchor`` -> the page
that holds that heading, any other file of the repository -> its page under ``repo_url``. A README section missing from mkdocs.yml's nav is a warning, so that
``mkdocs build --strict`` fails until the nav lists it.
"""

from __future__ import annotations

import logging
import os
import re

from markdown.extensions.toc import slugify
from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.readme_pages")
_generated: set[str] = set()
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _sections(text):
    """``(intro, [(title, body), ...])``: split at ``## `` headings outside code fences."""
    intro, sections, fence = [], [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            intro.append(line)
    return "\n".join(intro), [(title, "\n".join(body)) for title, body in sections]


def _outside_fences(text):
    """The lines of ``text`` with whether each lies outside a code fence."""
    fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        yield line, not fence and not line.startswith("```")


def _anchors(sections):
    """Each heading's anchor -> the page (and the anchor there, or None) that holds it."""
    where = {}
    for title, body in sections:
        page = f"guide/{slugify(title, '-')}.md"
        where[slugify(title, "-")] = (page, None)
        for line, prose in _outside_fences(body):
            if prose and line.startswith("### "):
                where[slugify(line[4:].strip(), "-")] = (page, slugify(line[4:].strip(), "-"))
    return where


def _relink(text, page, where, repo_url):
    """Links of README (written from the repository root) as seen from ``page`` in docs/: into
    docs/ relative to the page, to any other file of the repository on its repository page."""
    up = os.path.relpath(".", os.path.dirname(page) or ".")

    def one(match):
        target = match.group(1)
        if target.startswith("docs/"):
            target = os.path.normpath(os.path.join(up, target[len("docs/"):]))
        elif not target.startswith("#") and "://" not in target and not target.startswith("mailto:"):
            target = f"{repo_url.rstrip('/')}/blob/main/{target}"
        elif target.startswith("#") and target[1:] in where:
            other, anchor = where[target[1:]]
            if other != page:
                target = os.path.relpath(other, os.path.dirname(page) or ".")
                target += f"#{anchor}" if anchor else ""
        return f"]({target})"

    return _LINK.sub(one, text)


def on_files(files, config):
    root = os.path.dirname(config.config_file_path)
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        intro, sections = _sections(f.read())
    where, url = _anchors(sections), config.repo_url or ""
    pages = {"index.md": _relink(intro, "index.md", where, url)}
    for title, body in sections:
        page = f"guide/{slugify(title, '-')}.md"
        body = "\n".join(line[1:] if prose and line.startswith("### ") else line
                         for line, prose in _outside_fences(body))
        pages[page] = _relink(f"# {title}\n{body}", page, where, url)
    with open(os.path.join(root, "CHANGELOG.md"), encoding="utf-8") as f:
        pages["changelog.md"] = _relink(f.read(), "changelog.md", where, url)
    _generated.clear()
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
        _generated.add(uri)
    return files


def on_nav(nav, config, files):
    listed = {page.file.src_uri for page in nav.pages}
    for uri in sorted(_generated - listed):
        log.warning("README.md's section page %s is not in mkdocs.yml's nav: add it", uri)
    return nav
