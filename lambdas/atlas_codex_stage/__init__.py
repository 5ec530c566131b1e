"""The stage settings model and the function environment made from it.

Installed with the package (not shipped to Lambda): the CDK app validates ``cdk.json`` with
it at synth time, and the operator tools (``atlas-codex ops``, ``validate``, ``migrate``,
``local``) read a stage's settings with it from any directory, without the CDK app.
"""
