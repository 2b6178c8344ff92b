"""The Gradio Blocks app: ask, search, add articles and index statistics over one open index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from .. import SemsearchError
from . import render
from .service import (
    DEFAULT_MAX_UPLOAD_BYTES,
    EXAMPLES,
    UPLOAD_SUFFIXES,
    DemoIndex,
    IngestReport,
    open_index,
)

# Requests handled at once per event. Index work runs on one thread anyway, so more would only
# hold threads; the queue in front keeps everyone else waiting for their turn, not failing.
CONCURRENCY = 2
SOURCE_CHOICES = 200


def _theme() -> gr.themes.Base:
    # System fonts: the default theme fetches Google Fonts, which offline machines cannot reach.
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )


def build(
    index: DemoIndex | str | Path, *, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
) -> gr.Blocks:
    """The demo over ``index`` (a DemoIndex, or a directory opened once per process)."""
    service = index if isinstance(index, DemoIndex) else open_index(index)

    def ask(
        question: str,
        k: int = 5,
        date_from: str | None = None,
        date_to: str | None = None,
        sources: list[str] | None = None,
    ) -> dict[str, Any]:
        """Answer a question from the indexed news with numbered, quoted citations."""
        return _guard(
            service.ask, question, k=k, date_from=date_from, date_to=date_to, sources=sources
        )

    def search(
        query: str,
        k: int = 10,
        date_from: str | None = None,
        date_to: str | None = None,
        sources: list[str] | None = None,
    ) -> dict[str, Any]:
        """The top passages for a query, with their scores."""
        return _guard(
            service.search, query, k=k, date_from=date_from, date_to=date_to, sources=sources
        )

    def add(
        files: list[str] | None,
        text: str,
        title: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - how Gradio injects a progress bar
    ) -> tuple[Any, ...]:
        report = service.ingest(
            files or [],
            text or "",
            title=title or "",
            max_bytes=max_upload_bytes,
            progress=lambda fraction, desc: progress(fraction, desc=desc),
        )
        lines = [("error", p) for p in report.problems]
        done = bool(report.added or report.replaced or report.unchanged)
        if done:
            lines.insert(0, ("ok", _summary(report)))
            lines[1:1] = [("ok", f"• {t}") for t in report.titles]
        # Once added, the form empties so that a second click does not add the same again;
        # when nothing was added, what the user gave stays for them to fix.
        keep = gr.skip()
        cleared = (None, "", "") if done and not report.problems else (keep, keep, keep)
        return (render.report_html(lines), *refresh(), *cleared)

    def refresh() -> tuple[Any, ...]:
        stats = service.stats()
        return (
            render.stats_html(stats),
            *(gr.Button(q, visible=bool(q)) for q in _padded(service.examples())),
            gr.Dropdown(choices=stats["sources"][:SOURCE_CHOICES]),
        )

    stats = service.stats()
    demo = gr.Blocks(title="semsearch — cited answers over news", analytics_enabled=False)
    with demo:
        gr.HTML(
            "<h1>semsearch</h1><p>Ask the indexed news a question: the answer is made of quotes "
            "from the articles, each with a numbered source you can open.</p>"
        )
        with gr.Accordion("Filters", open=False), gr.Row():
            date_from = gr.Textbox(label="From date", placeholder="YYYY-MM-DD", elem_id="date-from")
            date_to = gr.Textbox(label="To date", placeholder="YYYY-MM-DD", elem_id="date-to")
            sources = gr.Dropdown(
                choices=stats["sources"][:SOURCE_CHOICES],
                value=[],
                multiselect=True,
                allow_custom_value=True,  # globs such as upload/* work too
                label="Sources",
                elem_id="sources-filter",
            )
            k = gr.Slider(1, 20, value=5, step=1, label="Passages considered (k)")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                with gr.Row():
                    question = gr.Textbox(
                        label="Question",
                        placeholder="What happened at the Iran–Afghanistan border?",
                        scale=5,
                        elem_id="question",
                    )
                    ask_button = gr.Button("Ask", variant="primary", scale=1, elem_id="ask-btn")
                # Buttons, not a gr.Dataset: that cuts every sample at 60 characters, and a
                # question cut short cannot be read.
                with gr.Column(elem_id="examples"):
                    gr.HTML('<p class="examples-label">Example questions from the articles</p>')
                    with gr.Row(elem_classes="example-row"):
                        examples = [
                            gr.Button(q, size="sm", visible=bool(q), scale=0, min_width=0)
                            for q in _padded(service.examples())
                        ]
                answer_view = gr.HTML(render.answer_html(None), elem_id="answer")
                sources_view = gr.HTML("", elem_id="sources")
                with gr.Accordion("Answer as JSON", open=False):
                    answer_json = gr.JSON(label="answer", elem_id="answer-json")
            with gr.Tab("Search", id="search"):
                with gr.Row():
                    query = gr.Textbox(label="Search passages", scale=5, elem_id="search-query")
                    search_button = gr.Button(
                        "Search", variant="primary", scale=1, elem_id="search-btn"
                    )
                hits_view = gr.HTML(render.hits_html(None), elem_id="search-results")
                with gr.Accordion("Results as JSON", open=False):
                    hits_json = gr.JSON(label="results")
            with gr.Tab("Add articles", id="add"):
                gr.Markdown(
                    f"Upload {', '.join(UPLOAD_SUFFIXES)} files (up to "
                    f"{max_upload_bytes // (1024 * 1024)} MB each) or paste an article. They are "
                    "added to the open index and saved to its directory."
                )
                files = gr.File(label="Files", file_count="multiple", elem_id="upload")
                title = gr.Textbox(
                    label="Title of the pasted article (optional)", elem_id="paste-title"
                )
                text = gr.Textbox(label="Or paste an article", lines=8, elem_id="paste")
                add_button = gr.Button("Add to the index", variant="primary", elem_id="add-btn")
                add_status = gr.HTML("", elem_id="add-status")
            with gr.Tab("Index", id="index"):
                stats_view = gr.HTML(render.stats_html(stats), elem_id="stats")

        filters = [k, date_from, date_to, sources]
        private: dict[str, Any] = {"api_visibility": "private"}

        def answered(event: Any) -> None:
            # On success the answer is drawn; on an error (shown as a message) the previous
            # answer is taken away, so that it cannot pass for the answer to this question.
            event.success(render_answer, answer_json, [answer_view, sources_view], **private)
            event.failure(_refused_answer, None, [answer_view, sources_view], **private)

        def listed(event: Any) -> None:
            event.success(render.hits_html, hits_json, hits_view, **private)
            event.failure(_refused_search, None, hits_view, **private)

        # The button's event is the named API endpoint; Enter in the box does the same, unnamed.
        answered(ask_button.click(ask, [question, *filters], answer_json, api_name="ask"))
        answered(question.submit(ask, [question, *filters], answer_json, **private))
        for example in examples:
            answered(  # a button's value is its label: the question it shows
                example.click(_same, example, question, **private).then(
                    ask, [question, *filters], answer_json, **private
                )
            )
        listed(search_button.click(search, [query, *filters], hits_json, api_name="search"))
        listed(query.submit(search, [query, *filters], hits_json, **private))
        add_button.click(
            add,
            [files, text, title],
            [add_status, stats_view, *examples, sources, files, text, title],
            api_visibility="private",
            concurrency_limit=1,  # one ingest at a time: each saves the whole index
        )
        demo.load(refresh, None, [stats_view, *examples, sources], **private)
    demo.queue(default_concurrency_limit=CONCURRENCY)
    return demo


def _summary(report: IngestReport) -> str:
    counts = [
        (report.added, "added"),
        (report.replaced, "replaced (same id, new text)"),
        (report.unchanged, "already in the index, unchanged"),
    ]
    parts = [f"{n} {what}" for n, what in counts if n]
    plural = "s" if report.passages != 1 else ""
    return f"Articles: {', '.join(parts)}; {report.passages} passage{plural} indexed; index saved."


def _padded(questions: list[str]) -> list[str]:
    """Always EXAMPLES entries, blanks hidden: the buttons are made once, then relabelled."""
    return (questions + [""] * EXAMPLES)[:EXAMPLES]


def _same(text: str) -> str:
    return text


def render_answer(answer: dict[str, Any] | None) -> tuple[str, str]:
    return render.answer_html(answer), render.sources_html(answer)


def _refused_answer() -> tuple[str, str]:
    return render.refused_html("No answer"), ""


def _refused_search() -> str:
    return render.refused_html("No results")


def _guard(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Show semsearch's one-line errors (empty question, bad date) to the user as they are."""
    try:
        result: dict[str, Any] = fn(*args, **kwargs)
    except SemsearchError as exc:
        raise gr.Error(str(exc)) from None
    return result


def launch(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    quiet: bool = True,
) -> str:
    """Start serving the demo in the background; returns its local URL. ``demo.block_thread()``
    then waits until Ctrl-C, ``demo.close()`` stops it."""
    demo.launch(
        server_name=host,
        server_port=port,
        max_file_size=max_upload_bytes,  # Gradio refuses bigger uploads before they hit the disk
        prevent_thread_lock=True,
        quiet=quiet,
        show_error=True,
        theme=_theme(),
        css=render.CSS,
    )
    return str(demo.local_url)
