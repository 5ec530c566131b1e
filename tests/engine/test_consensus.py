"""Main content by two readers: where they agree ours serves, where they disagree
trafilatura's text serves, with our blocks added when it probably missed content."""

from __future__ import annotations

from atlas_codex.engine.reading import consensus

STORY = [
    "The council met on Tuesday and voted to keep the library open for another ten years.",
    "The budget for the repairs was approved after a debate that lasted into the night.",
    "Readers will find the new opening hours posted at the entrance from next Monday on.",
]


def test_when_the_readers_agree_ours_serves_with_its_structure() -> None:
    ours = "# Library stays open\n\n" + "\n\n".join(STORY) + "\n"
    theirs = " ".join(STORY)  # the same words, without our heading and blocks
    assert consensus.reconcile(ours, theirs) == ours


def test_when_ours_kept_boilerplate_and_theirs_holds_more_of_the_story_theirs_serves() -> None:
    menu = "\n\n".join(
        f"Sections news sport weather culture opinion podcasts newsletters page {n}"
        for n in range(3)
    )
    more = [
        f"Part {n}: the library's archive holds letters, maps and photographs of the town."
        for n in range(6)
    ]
    ours = menu + "\n\n" + STORY[0] + "\n"
    theirs = "\n\n".join([*STORY, *more])
    out = consensus.reconcile(ours, theirs)
    assert "Sections news sport" not in out
    assert all(sentence in out for sentence in [*STORY, *more])


def test_when_their_reading_is_much_shorter_our_missing_blocks_are_added() -> None:
    extra = [
        f"Part {n}: the library's archive holds letters, maps and photographs of the town."
        for n in range(8)
    ]
    ours = "\n\n".join([*STORY, *extra]) + "\n"
    theirs = STORY[0]
    out = consensus.reconcile(ours, theirs)
    assert out.startswith(STORY[0])
    assert all(block in out for block in extra)
    assert out.count(STORY[0]) == 1  # a block it has already is not added twice


def test_an_empty_reading_leaves_the_other() -> None:
    text = "\n\n".join(STORY) + "\n"
    assert consensus.reconcile(text, "") == text
    assert consensus.reconcile("", " ".join(STORY)) == " ".join(STORY) + "\n"


def test_a_page_trafilatura_cannot_read_leaves_ours() -> None:
    assert consensus.trafilatura_markdown("", "https://x.example/") == ""
    html = "<html><body><main>" + "".join(f"<p>{s}</p>" for s in STORY) + "</main></body></html>"
    assert all(s in consensus.main_markdown(html, "https://x.example/") for s in STORY)
