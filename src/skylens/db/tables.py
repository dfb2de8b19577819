"""The relational schema. Migrations in `migrations/versions` create exactly this."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    }
)

images = sa.Table(
    "images",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(255)),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("visibility", sa.String(20), nullable=False),
    sa.Column("protected", sa.Boolean, nullable=False, default=False),
    sa.Column("os_hidden", sa.Boolean, nullable=False, default=False),
    sa.Column("owner", sa.String(255)),
    sa.Column("checksum", sa.String(32)),
    sa.Column("os_hash_algo", sa.String(64)),
    sa.Column("os_hash_value", sa.String(128)),
    sa.Column("size", sa.BigInteger),
    sa.Column("virtual_size", sa.BigInteger),
    sa.Column("min_ram", sa.Integer, nullable=False, default=0),
    sa.Column("min_disk", sa.Integer, nullable=False, default=0),
    sa.Column("container_format", sa.String(32)),
    sa.Column("disk_format", sa.String(32)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # Comma-separated names of the stores holding the data (Glance's wire form);
    # the key within each store is storage.keys.image_data_key(id).
    sa.Column("stores", sa.Text),
    # The locations API's URLs in read-only stores (JSON: [{"url", "store",
    # "metadata"}]); NULL when there are none.
    sa.Column("locations", sa.Text),
    # When the image first became active; NULL for images never active, and for
    # those that were before this column existed.
    sa.Column("active_at", sa.DateTime),
    # Optimistic concurrency: every write bumps it and checks the value it read.
    sa.Column("version", sa.Integer, nullable=False, default=1),
)

# Keyset paging walks these in both directions. NULL sorts first in ascending
# order on every backend: SQLite's natural order, and PostgreSQL is told so.
sa.Index("ix_images_created_at_id", images.c.created_at, images.c.id)
sa.Index("ix_images_updated_at_id", images.c.updated_at, images.c.id)
for _column in (images.c.name, images.c.size):
    _name = f"ix_images_{_column.name}_created_at_id"
    sa.Index(_name, _column, images.c.created_at, images.c.id).ddl_if(dialect="sqlite")
    sa.Index(_name, _column.asc().nulls_first(), images.c.created_at, images.c.id).ddl_if(
        dialect="postgresql"
    )
sa.Index("ix_images_owner_created_at", images.c.owner, images.c.created_at)
sa.Index("ix_images_visibility_created_at", images.c.visibility, images.c.created_at)
sa.Index("ix_images_status", images.c.status)
sa.Index("ix_images_checksum", images.c.checksum)
sa.Index("ix_images_os_hash_value", images.c.os_hash_value)

image_properties = sa.Table(
    "image_properties",
    metadata,
    sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id"), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text),  # NULL where the schema allows it (kernel_id: null)
)
# Property filters look rows up by name and value. PostgreSQL's btree cannot index
# arbitrarily long text, so it indexes the value's md5 (`expressions.value_equals`
# compares both). Not a hash index on the value: each insertion of a common value
# (os_type=linux: most images) walks that value's whole bucket chain, thousands of
# pages at a million images, and building one took over 20 minutes. Migration 0007
# also creates statistics over (name, md5(value), value), which the planner needs
# to count the rows a filter matches (they are not declared here: SQLAlchemy has no
# construct for them).
sa.Index(
    "ix_image_properties_name_md5_value",
    image_properties.c.name,
    sa.func.md5(image_properties.c.value),
).ddl_if(dialect="postgresql")
sa.Index(
    "ix_image_properties_name_value", image_properties.c.name, image_properties.c.value
).ddl_if(dialect="sqlite")

image_tags = sa.Table(
    "image_tags",
    metadata,
    sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id"), primary_key=True),
    sa.Column("value", sa.String(255), primary_key=True),
)
sa.Index("ix_image_tags_value", image_tags.c.value)

image_members = sa.Table(
    "image_members",
    metadata,
    sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id"), primary_key=True),
    sa.Column("member", sa.String(255), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
# Covers "images shared with project P" entirely, the list's visibility subquery.
sa.Index(
    "ix_image_members_member_status_image_id",
    image_members.c.member,
    image_members.c.status,
    image_members.c.image_id,
)

# Ids of deleted images. They are never handed out again, so nobody can
# recreate a trusted image id with other content (see OSSN-0075).
image_tombstones = sa.Table(
    "image_tombstones",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("owner", sa.String(255)),
    sa.Column("deleted_at", sa.DateTime, nullable=False),
)

# Uploads in progress. The process streaming an image's data renews its lease while
# it works, so the sweep can tell a live upload from one whose process died, and
# put that image back to `queued` for another try.
image_uploads = sa.Table(
    "image_uploads",
    metadata,
    sa.Column("image_id", sa.String(36), primary_key=True),
    sa.Column("renewed_at", sa.DateTime, nullable=False),
    # The process holding the lease (host:pid:instance), for an operator; NULL when
    # taken by a release before this column existed.
    sa.Column("holder", sa.String(255)),
)

# Tasks (Glance's `api_image_import`): durable records of work done after the request
# that asked for it. A worker holds a task under a lease it renews while it works;
# a task whose lease lapsed belongs to a dead worker, and another worker takes it over.
tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("type", sa.String(30), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("owner", sa.String(255)),
    sa.Column("input", sa.Text),  # JSON
    sa.Column("result", sa.Text),  # JSON
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("expires_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("image_id", sa.String(36)),
    sa.Column("request_id", sa.String(64)),
    sa.Column("user_id", sa.String(255)),
    # Who works on it and until when (NULL: nobody; a pending task is then claimable).
    sa.Column("lease_holder", sa.String(255)),
    sa.Column("lease_expires_at", sa.DateTime),
    # How many workers have claimed it: a task that kills its workers is given up.
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    # The creator's token while a task that acts as its creator runs (glance-download);
    # NULL once it ended. Never shown.
    sa.Column("auth_token", sa.Text),
)
sa.Index("ix_tasks_status_lease_expires_at", tasks.c.status, tasks.c.lease_expires_at)
sa.Index("ix_tasks_image_id", tasks.c.image_id)
sa.Index("ix_tasks_created_at_id", tasks.c.created_at, tasks.c.id)
sa.Index("ix_tasks_expires_at", tasks.c.expires_at)

# The image cache's index: what each node holds in its cache directory, and what
# it is asked to fetch. Keyed by node (`image_cache.node_reference`), in the shared
# database, so any node can say which nodes hold an image.
cached_images = sa.Table(
    "cached_images",
    metadata,
    sa.Column("node", sa.String(255), primary_key=True),
    sa.Column("image_id", sa.String(36), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("hits", sa.Integer, nullable=False, default=0),
    sa.Column("last_accessed", sa.DateTime, nullable=False),
    sa.Column("last_modified", sa.DateTime, nullable=False),
    sa.Column("checksum", sa.String(128)),
    sa.Column("fingerprint", sa.String(100), nullable=False),
)
sa.Index("ix_cached_images_image_id", cached_images.c.image_id)

cache_queue = sa.Table(
    "cache_queue",
    metadata,
    sa.Column("node", sa.String(255), primary_key=True),
    sa.Column("image_id", sa.String(36), primary_key=True),
    sa.Column("queued_at", sa.DateTime, nullable=False),
)

# -- metadata definitions (metadefs) ------------------------------------------------
# A namespace's children name it by its surrogate id, so renaming a namespace is one
# row. Property definitions and object properties are JSON text: a list is one
# query over one table, whatever the number of properties.

metadef_namespaces = sa.Table(
    "metadef_namespaces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("namespace", sa.String(80), nullable=False),
    sa.Column("display_name", sa.String(80)),
    sa.Column("description", sa.Text),
    sa.Column("visibility", sa.String(32), nullable=False),
    sa.Column("protected", sa.Boolean, nullable=False),
    sa.Column("owner", sa.String(255)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
sa.Index(
    "ix_metadef_namespaces_created_at_id", metadef_namespaces.c.created_at, metadef_namespaces.c.id
)

sa.Index("ix_metadef_namespaces_namespace", metadef_namespaces.c.namespace, unique=True)

metadef_resource_types = sa.Table(
    "metadef_resource_types",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

sa.Index("ix_metadef_resource_types_name", metadef_resource_types.c.name, unique=True)

metadef_associations = sa.Table(
    "metadef_associations",
    metadata,
    sa.Column("namespace_id", sa.Integer, sa.ForeignKey("metadef_namespaces.id"), primary_key=True),
    sa.Column(
        "resource_type_id",
        sa.Integer,
        sa.ForeignKey("metadef_resource_types.id"),
        primary_key=True,
    ),
    sa.Column("prefix", sa.String(80)),
    sa.Column("properties_target", sa.String(80)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
sa.Index("ix_metadef_associations_resource_type_id", metadef_associations.c.resource_type_id)

metadef_properties = sa.Table(
    "metadef_properties",
    metadata,
    sa.Column("namespace_id", sa.Integer, sa.ForeignKey("metadef_namespaces.id"), primary_key=True),
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("json_schema", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

metadef_objects = sa.Table(
    "metadef_objects",
    metadata,
    sa.Column("namespace_id", sa.Integer, sa.ForeignKey("metadef_namespaces.id"), primary_key=True),
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("description", sa.Text),
    sa.Column("required", sa.Text),  # a JSON array of property names
    sa.Column("json_schema", sa.Text),  # its property definitions, a JSON object
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

metadef_tags = sa.Table(
    "metadef_tags",
    metadata,
    sa.Column("namespace_id", sa.Integer, sa.ForeignKey("metadef_namespaces.id"), primary_key=True),
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
sa.Index(
    "ix_metadef_tags_namespace_id_created_at",
    metadef_tags.c.namespace_id,
    metadef_tags.c.created_at,
)

# One row once the shipped catalogue has been loaded into this database, so that it
# is loaded on the first start only (an operator's unload is not undone by a restart).
metadef_catalogue = sa.Table(
    "metadef_catalogue",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("loaded_at", sa.DateTime, nullable=False),
)
