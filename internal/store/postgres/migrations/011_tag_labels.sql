ALTER TABLE image_tags ADD COLUMN label INTEGER NOT NULL DEFAULT 0;
UPDATE image_tags SET label = 1 WHERE digest IN (SELECT digest FROM images WHERE source <> 'registry');
