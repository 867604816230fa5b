"""The web API, one router per resource: the HTML pages, accounts (login, logout, who is logged
in), jobs (uploads, their events, downloads, save, cancel), the reader's review of a job's result
(edit, undo, save the revision, sign), comparisons, the PACS and saved results. Each route checks
who asks through ``liverhealth.web.deps`` and hands the work to the workflow service or the job pool."""
