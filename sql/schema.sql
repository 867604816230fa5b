-- LiverHealth results database: MySQL / MariaDB DDL, the same schema as the ORM
-- (liverhealth/storage/models.py) at Alembic revision 0001. For a DBA who creates the database
-- by hand:  CREATE DATABASE liverhealth CHARACTER SET utf8mb4;  then  mysql liverhealth < sql/schema.sql
-- tests/storage/test_schema_sql.py checks that this file and the ORM create the same tables.

CREATE TABLE patient (
    id INTEGER NOT NULL AUTO_INCREMENT,
    name VARCHAR(255),
    patient_id VARCHAR(64),
    sex VARCHAR(16),
    birth_year SMALLINT,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE INDEX ix_patient_patient_id ON patient (patient_id);

CREATE TABLE study (
    id INTEGER NOT NULL AUTO_INCREMENT,
    patient_ref INTEGER,
    content_sha256 VARCHAR(64) NOT NULL,
    source_format VARCHAR(32) NOT NULL,
    description VARCHAR(512) NOT NULL,
    modality VARCHAR(16),
    series_uid VARCHAR(128),
    slice_count INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    column_count INTEGER NOT NULL,
    spacing_z_mm FLOAT,
    spacing_y_mm FLOAT,
    spacing_x_mm FLOAT,
    affine JSON,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(patient_ref) REFERENCES patient (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE INDEX ix_study_content_sha256 ON study (content_sha256);
CREATE INDEX ix_study_patient_ref ON study (patient_ref);

CREATE TABLE segmentation_result (
    id INTEGER NOT NULL AUTO_INCREMENT,
    study_id INTEGER NOT NULL,
    model_id VARCHAR(64) NOT NULL,
    model_sha256 VARCHAR(64) NOT NULL,
    labels_zlib LONGBLOB NOT NULL,
    labels_shape VARCHAR(64) NOT NULL,
    labels_sha256 VARCHAR(64) NOT NULL,
    overlay_png LONGBLOB,
    measurements JSON NOT NULL,
    timings JSON NOT NULL,
    liver_volume_ml FLOAT,
    tumour_volume_ml FLOAT,
    lesion_count INTEGER NOT NULL,
    workstation VARCHAR(255),
    user_name VARCHAR(255),
    created_at DATETIME NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(study_id) REFERENCES study (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE INDEX ix_result_model_created ON segmentation_result (model_id, created_at);
CREATE INDEX ix_segmentation_result_created_at ON segmentation_result (created_at);
CREATE INDEX ix_segmentation_result_study_id ON segmentation_result (study_id);

CREATE TABLE report (
    id INTEGER NOT NULL AUTO_INCREMENT,
    result_id INTEGER NOT NULL,
    findings_text LONGTEXT NOT NULL,
    draft_text LONGTEXT,
    draft_notice VARCHAR(512),
    llm_endpoint VARCHAR(255),
    llm_model VARCHAR(128),
    pdf LONGBLOB,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(result_id) REFERENCES segmentation_result (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE INDEX ix_report_result_id ON report (result_id);

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO alembic_version (version_num) VALUES ('0001');
