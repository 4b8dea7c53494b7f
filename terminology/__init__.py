"""Terminology: CodeSystem, ValueSet and ConceptMap content and the operations on them
($lookup, $validate-code, $expand, $translate, $subsumes), with displays in Traditional
Chinese, Simplified Chinese and English.

Depends on no other BayLink package. Filled in by the terminology issue.
"""
