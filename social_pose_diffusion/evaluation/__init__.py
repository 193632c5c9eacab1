"""Judging a policy: metrics, offline (teacher-forced and closed-loop) evaluation and reports."""
