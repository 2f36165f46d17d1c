"""Sphinx configuration for the skminibatch documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``
after ``pip install -e ".[docs]"``. The gallery in ``docs/examples`` is
executed during the build.

Nothing here reaches the network: intersphinx is not configured (references
to scikit-learn objects render as plain code), and sphinx-gallery's link
embedding is only done for this package.
"""

import os
import re
from datetime import date

# The gallery draws with matplotlib; a build machine has no display.
os.environ.setdefault("MPLBACKEND", "Agg")
import matplotlib  # noqa: E402  after choosing the backend

matplotlib.use("Agg")

import skminibatch  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "skminibatch"
author = "skminibatch developers"
copyright = f"{date.today().year}, {author}"
release = skminibatch.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "examples/GALLERY_HEADER.rst"]
default_role = "literal"
root_doc = "index"

# autodoc / autosummary: one page per public class, written to generated/
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"

# numpydoc: the class template lists the methods, so numpydoc does not add
# its own member tables (they would duplicate the autosummary pages).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Check our docstrings while building. The exclusions are sections a short
# docstring may leave out; the regexes skip methods inherited from
# scikit-learn's base classes, whose docstrings are not ours to fix.
numpydoc_validation_checks = {
    "all",
    "GL01",  # summary may start on the opening line
    "SA01",  # See Also is optional
    "EX01",  # Examples only on the classes, not on every method
    "ES01",  # extended summary is optional
    "RT02",  # "self : Estimator" is the scikit-learn convention
    "SA03",  # See Also descriptions may start with "scikit-learn's ..."
    "SS06",  # LossCurveDisplay's summary takes two lines; re-enable when fixed
}
numpydoc_validation_exclude = {
    r"\.get_metadata_routing$",
    r"\.get_params$",
    r"\.set_params$",
    r"\.set_.*_request$",
    r"\.score$",
    r"\.__init__$",
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skminibatch {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 8,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_show_sourcelink = True
# Single pages have nothing to list in the left sidebar; the API reference
# and the gallery keep it (it lists their sub-pages).
html_sidebars = {
    page: [] for page in ("index", "quick_start", "user_guide", "compilation",
                          "float32", "scaling", "differences")
}

# -- sphinx-gallery ----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    # pages per public object listing the examples that use it
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("skminibatch",),
    # an example that raises fails the build
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "min_reported_time": 0,
    "show_memory": False,
    "download_all_examples": False,
}


# -- Links to scikit-learn without intersphinx -------------------------------
# Intersphinx would download scikit-learn's inventory at build time. Instead,
# references that Sphinx cannot resolve locally and that point into
# scikit-learn become plain external links: Python objects by their API page
# (the URL follows from the name), and the few labels and glossary terms that
# the docstrings we inherit from scikit-learn's base classes use.
SKLEARN_DOCS = "https://scikit-learn.org/stable/"
SKLEARN_LABELS = {
    "metadata_routing": "metadata_routing.html",
    "accuracy_score": "modules/model_evaluation.html#accuracy-score",
    "r2_score": "modules/model_evaluation.html#r2-score",
}


def _sklearn_url(node):
    """External URL for an unresolved reference into scikit-learn, or None."""
    target = node.get("reftarget", "")
    domain, reftype = node.get("refdomain"), node.get("reftype")
    if domain == "py" and target.startswith("sklearn.") and reftype != "mod":
        parts = target.split(".")
        # the page is named after the class (first capitalised part) or,
        # for a function, after the function itself
        cut = next((i for i, p in enumerate(parts) if p[:1].isupper()),
                   len(parts) - 1)
        page = ".".join(parts[:cut + 1])
        return f"{SKLEARN_DOCS}modules/generated/{page}.html#{target}"
    from_sklearn = "docstring of sklearn." in (node.source or "")
    if domain == "std" and from_sklearn:
        if reftype == "ref" and target in SKLEARN_LABELS:
            return SKLEARN_DOCS + SKLEARN_LABELS[target]
        if reftype == "term":
            slug = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-")
            return f"{SKLEARN_DOCS}glossary.html#term-{slug}"
    return None


def link_to_sklearn(app, env, node, contnode):
    from docutils import nodes

    url = _sklearn_url(node)
    if url is None:
        return None
    reference = nodes.reference("", "", internal=False, refuri=url,
                                reftitle=node.get("reftarget", ""))
    reference.append(contnode)
    return reference


def quote_shape_names(app, what, name, obj, options, lines):
    """In our docstrings, quote names ending in "_" inside "shape (...)"
    (``(n_features_in_,)``): reST would read ``name_`` as a link target."""
    if not name.startswith("skminibatch"):
        return

    def quote(match):
        inner = re.sub(r"(?<![`\w])(\w+_)(?=\s*[,)]|$)", r"``\1``", match.group(1))
        return f"shape ({inner})"

    lines[:] = [re.sub(r"shape \(([^()]*)\)", quote, line) for line in lines]


def setup(app):
    app.connect("missing-reference", link_to_sklearn)
    # before numpydoc (priority 500) turns the sections into reST
    app.connect("autodoc-process-docstring", quote_shape_names, priority=400)
