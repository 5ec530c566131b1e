"""The REST API in rooms: the door (``door.py``: correlation id, key, body checks, CORS for
refusals), the answers every route gives (``answers.py``), and one Powertools ``Router`` per
room, each made by a factory from what it needs (``jobs.py``, ``webhook_secrets.py``,
``public.py``). ``atlas_codex.handlers.api`` wires them into one resolver; the routes call
the job service and the stores only."""
