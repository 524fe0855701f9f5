"""`madoguchi worker --once` says what the pass did, every kind of work included."""

from collections import Counter

from infra.cli import describe_pass
from infra.worker import PassReport


def test_the_pass_line_names_every_kind_of_work_it_did() -> None:
    report = PassReport(
        delivered=Counter({"mail.verify_email": 2}),
        failed=Counter({"mail.reset": 1}),
        clock_reminders=3,
        heads_stamped=4,
        chatbot_sessions_purged=5,
        consultations_shredded=6,
        statistics_years=1,
        exports_prepared=2,
        exports_swept=1,
        erasures_completed=1,
        erasure_shredded=2,
        erasure_kept=1,
        files_left=1,
    )
    assert describe_pass(report) == (
        "delivered 2 (2 mail.verify_email); failed, to be retried: 1 mail.reset; "
        "3 request clock reminders queued; 4 chain heads time-stamped; 5 expired chatbot sessions purged; "
        "6 consultations past retention shredded; 1 fiscal years of statistics recounted; "
        "2 personal exports prepared; 1 personal export copies deleted; 1 account erasures carried out; "
        "2 consultations of erased accounts shredded; 1 consultations of erased accounts kept under a legal hold; "
        "1 files of shredded consultations the store refused to delete (retried)"
    )


def test_an_idle_pass_says_nothing_was_due() -> None:
    assert describe_pass(PassReport()) == "delivered 0: nothing due"
