"""The app's side of architecture search (issue 12): the Search dock (``panel``), the search
child process (``process``), the live scatter and trial table, the undoable choice edits
(``commands``), the Inspector's "Search over…" (``inspector_menu``) and the canvas badge
(``badge``). The search itself lives in ``training/search`` and runs in a child process
(``layerloom search --events``); nothing here trains or samples. Nothing is imported here, so the
canvas can take the badge painter without loading the panel."""
