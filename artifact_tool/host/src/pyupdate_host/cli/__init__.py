"""`pyupdate-artifact`: one module per verb, listed in main.VERBS."""
