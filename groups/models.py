# Models arrive with this app's issue; see DESIGN.md "Where code goes".
